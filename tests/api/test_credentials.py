"""``/api/v1/credentials``: every kind through the API, and secrets that never come back out."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any, TypeVar

import pytest
from litestar.testing import AsyncTestClient

from server.api.credentials import KindName
from server.credentials import kinds, service
from server.db.tables import Credential, Inventory, InventoryCredential
from tests.conftest import SECRET_KEY
from tests.credentials.samples import secret_markers, ssh_keypair, valid_inputs
from tests.factories import headers_for, in_app_loop, make_organization, make_user

URL = "/api/v1/credentials"
T = TypeVar("T")


async def create(client: AsyncTestClient[Any], kind: str, inputs: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    body = {"name": f"{kind}-{uuid.uuid4().hex[:8]}", "kind": kind, "inputs": inputs, **overrides}
    response = await client.post(URL, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def current_organization(client: AsyncTestClient[Any]) -> uuid.UUID:
    return uuid.UUID((await client.get("/api/v1/users/me")).json()["current_organization_id"])


def field_errors(response: Any) -> dict[str, str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return {e["field"]: e["message"] for e in response.json()["errors"]}


def test_the_api_knows_every_kind() -> None:
    assert KindName.__args__ == kinds.KIND_NAMES


@pytest.mark.parametrize("kind", kinds.KIND_NAMES)
async def test_each_kind_is_stored_encrypted_and_never_shown(
    kind: str,
    admin_client: AsyncTestClient[Any],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="piccolo")
    inputs = valid_inputs(kind, tmp_path)
    spec = kinds.KINDS[kind]
    markers = secret_markers(inputs, [name for name in spec.secret_names if name in inputs])
    assert markers

    created = await create(admin_client, kind, inputs, description="for the lab")

    assert set(created) == {
        "id",
        "organization_id",
        "name",
        "kind",
        "description",
        "inputs",
        "metadata",
        "secret_fields",
        "fingerprint",
        "created_at",
        "updated_at",
    }
    assert created["secret_fields"] == sorted(name for name in spec.secret_names if name in inputs)
    assert set(created["inputs"]) <= set(spec.public_names)
    assert created["fingerprint"]
    one = await admin_client.get(f"{URL}/{created['id']}")
    listed = await admin_client.get(URL, params={"kind": kind})
    assert one.json() == created
    assert [item["id"] for item in listed.json()["items"]] == [created["id"]]
    audit = await admin_client.get("/api/v1/audit-log", params={"size": 100})
    entry = next(e for e in audit.json()["items"] if e["action"] == "credential.create")
    assert entry["detail"] == {
        "name": created["name"],
        "kind": kind,
        "fields": sorted([*created["inputs"], *created["secret_fields"]]),
    }

    row = await in_app_loop(
        admin_client, lambda: Credential.select().where(Credential.id == created["id"]).first().run()
    )
    assert row is not None and row["secret"].startswith("wf1.")
    outputs = {
        "create": str(created),
        "get": one.text,
        "list": listed.text,
        "audit": audit.text,
        "row": str(row),
        "logs": caplog.text,
        "stdout": "".join(capsys.readouterr()),
    }
    assert caplog.records, "nothing was logged: the search below would prove nothing"
    plaintext = [str(inputs[name]) for name in created["secret_fields"]]
    leaks = [
        (where, marker[:12]) for where, text in outputs.items() for marker in markers + plaintext if marker in text
    ]
    assert leaks == []


async def test_reveal_decrypts_for_the_server_only(admin_client: AsyncTestClient[Any], tmp_path: Path) -> None:
    created = await create(admin_client, "password", valid_inputs("password", tmp_path))
    credential_id, organization_id = uuid.UUID(created["id"]), await current_organization(admin_client)

    revealed = await in_app_loop(admin_client, lambda: service.reveal(SECRET_KEY, organization_id, [credential_id]))
    kinds_by_id = await in_app_loop(
        admin_client, lambda: service.credential_kinds(organization_id, [credential_id, uuid.uuid4()])
    )
    elsewhere = await in_app_loop(admin_client, lambda: service.reveal(SECRET_KEY, uuid.uuid4(), [credential_id]))

    credential = revealed[credential_id]
    assert credential.secret == {"password": "pw-s3cr3t-password-1a2b"}
    assert credential.fields == {"username": "root"}
    assert (credential.name, credential.kind) == (created["name"], "password")
    assert "pw-s3cr3t" not in repr(credential) and "pw-s3cr3t" not in str(revealed)
    assert kinds_by_id == {credential_id: "password"}
    assert elsewhere == {}
    assert await in_app_loop(admin_client, lambda: service.reveal(SECRET_KEY, organization_id, [])) == {}


async def reveal_one(client: AsyncTestClient[Any], credential_id: str) -> service.Revealed:
    organization_id, key = await current_organization(client), uuid.UUID(credential_id)
    return (await in_app_loop(client, lambda: service.reveal(SECRET_KEY, organization_id, [key])))[key]


async def test_patch_keeps_secrets_not_sent_and_replaces_those_sent(admin_client: AsyncTestClient[Any]) -> None:
    created = await create(admin_client, "password", {"username": "root", "password": "first-password"})
    url = f"{URL}/{created['id']}"

    renamed = await admin_client.patch(url, json={"inputs": {"username": "admin"}, "description": "new"})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["inputs"] == {"username": "admin"}
    assert renamed.json()["fingerprint"] == created["fingerprint"]
    assert (await reveal_one(admin_client, created["id"])).secret == {"password": "first-password"}

    replaced = await admin_client.patch(url, json={"inputs": {"password": "second-password"}})
    assert replaced.json()["fingerprint"] != created["fingerprint"]
    assert replaced.json()["inputs"] == {"username": "admin"}
    assert (await reveal_one(admin_client, created["id"])).secret == {"password": "second-password"}

    audit = (await admin_client.get("/api/v1/audit-log")).json()["items"]
    updates = [e["detail"] for e in audit if e["action"] == "credential.update"]
    assert updates == [
        {"name": created["name"], "kind": "password", "fields": ["password"]},
        {"name": created["name"], "kind": "password", "fields": ["username"], "changed": ["description"]},
    ]
    assert "first-password" not in str(audit) and "second-password" not in str(audit)


async def test_patch_an_ssh_key(admin_client: AsyncTestClient[Any], tmp_path: Path) -> None:
    first, second = ssh_keypair(tmp_path), ssh_keypair(tmp_path, "ecdsa")
    created = await create(admin_client, "ssh_key", {"username": "deploy", "private_key": first.private_key})
    url = f"{URL}/{created['id']}"
    assert created["fingerprint"] == first.fingerprint
    assert created["metadata"]["public_key"] == " ".join(first.public_key.split()[:2])

    cleared = await admin_client.patch(url, json={"inputs": {"username": None}})
    assert cleared.json()["inputs"] == {}
    assert cleared.json()["fingerprint"] == first.fingerprint

    replaced = await admin_client.patch(url, json={"inputs": {"private_key": second.private_key}})
    assert replaced.json()["fingerprint"] == second.fingerprint
    assert replaced.json()["metadata"]["key_type"] == "ecdsa-sha2-nistp256"
    assert (await reveal_one(admin_client, created["id"])).secret == {"private_key": second.private_key}

    unchanged = await admin_client.patch(url, json={"inputs": {}, "kind": "ssh_key"})
    assert unchanged.json()["updated_at"] == replaced.json()["updated_at"]


async def test_validation_errors_name_each_field(admin_client: AsyncTestClient[Any], tmp_path: Path) -> None:
    assert list(field_errors(await admin_client.post(URL, json={"name": "x", "kind": "telepathy"}))) == ["body.kind"]
    errors = field_errors(
        await admin_client.post(URL, json={"name": "x", "kind": "password", "inputs": {"user": "root"}})
    )
    assert errors.keys() == {"body.inputs.user", "body.inputs.username", "body.inputs.password"}
    assert list(field_errors(await admin_client.post(URL, json={"name": "x", "kind": "password", "secret": 1}))) == [
        "body.secret"
    ]

    pair = ssh_keypair(tmp_path, passphrase="passphrase")
    body = {"name": "k", "kind": "ssh_key", "inputs": {"private_key": pair.private_key, "passphrase": "wrong"}}
    assert field_errors(await admin_client.post(URL, json=body)) == {
        "body.inputs.passphrase": "wrong passphrase for the private key"
    }
    body["inputs"] = {"private_key": "not a key"}
    assert list(field_errors(await admin_client.post(URL, json=body))) == ["body.inputs.private_key"]

    created = await create(admin_client, "become", {"password": "x"})
    url = f"{URL}/{created['id']}"
    assert list(field_errors(await admin_client.patch(url, json={"kind": "password"}))) == ["body.kind"]
    assert list(field_errors(await admin_client.patch(url, json={"inputs": {"password": None}}))) == [
        "body.inputs.password"
    ]
    assert list(field_errors(await admin_client.patch(url, json={"description": "a\x00b"}))) == ["body.description"]
    assert (await admin_client.get(url)).json() == created


async def test_names_are_unique_in_an_organization(admin_client: AsyncTestClient[Any]) -> None:
    first = await create(admin_client, "vault_password", {"password": "x"}, name="vault")
    again = await admin_client.post(
        URL, json={"name": "vault", "kind": "password", "inputs": {"username": "u", "password": "p"}}
    )
    assert again.status_code == 409 and again.json()["code"] == "CONFLICT"
    second = await create(admin_client, "vault_password", {"password": "y"}, name="vault-2")
    rename = await admin_client.patch(f"{URL}/{second['id']}", json={"name": "vault"})
    assert rename.status_code == 409

    org_b = await make_organization(admin_client)
    elsewhere = await admin_client.post(
        URL,
        json={"name": "vault", "kind": "vault_password", "inputs": {"password": "z"}},
        headers={"X-Organization-ID": org_b["id"]},
    )
    assert elsewhere.status_code == 201
    assert first["organization_id"] != elsewhere.json()["organization_id"]


async def test_roles(admin_client: AsyncTestClient[Any]) -> None:
    created = await create(admin_client, "password", {"username": "u", "password": "p"})
    url = f"{URL}/{created['id']}"
    viewer = await headers_for(admin_client, await make_user(admin_client, "viewer"))
    operator = await headers_for(admin_client, await make_user(admin_client, "operator"))
    body = {"name": "new", "kind": "vault_password", "inputs": {"password": "x"}}

    assert (await admin_client.get(URL, headers=viewer)).status_code == 403
    assert (await admin_client.get(url, headers=viewer)).status_code == 403
    assert (await admin_client.get(URL, headers=operator)).json()["total"] == 1
    assert (await admin_client.get(url, headers=operator)).json() == created
    assert (await admin_client.post(URL, json=body, headers=operator)).status_code == 403
    assert (await admin_client.patch(url, json={"description": "x"}, headers=operator)).status_code == 403
    assert (await admin_client.delete(url, headers=operator)).status_code == 403


async def test_another_organizations_credential_is_not_found(admin_client: AsyncTestClient[Any]) -> None:
    created = await create(admin_client, "password", {"username": "u", "password": "p"})
    url = f"{URL}/{created['id']}"
    org_b = await make_organization(admin_client)
    outsider = await headers_for(
        admin_client, await make_user(admin_client, "admin", headers={"X-Organization-ID": org_b["id"]})
    )

    assert (await admin_client.get(url, headers=outsider)).status_code == 404
    assert (await admin_client.patch(url, json={"description": "x"}, headers=outsider)).status_code == 404
    assert (await admin_client.delete(url, headers=outsider)).status_code == 404
    assert (await admin_client.get(URL, headers=outsider)).json()["items"] == []
    assert (await admin_client.get(url, headers={"X-Organization-ID": org_b["id"]})).status_code == 404
    assert (await admin_client.get(url)).status_code == 200


async def test_a_credential_an_inventory_uses_cannot_be_deleted(admin_client: AsyncTestClient[Any]) -> None:
    created = await create(admin_client, "password", {"username": "u", "password": "p"})
    organization_id, credential_id = await current_organization(admin_client), uuid.UUID(created["id"])
    inventory = Inventory(organization=organization_id, name="lab hosts")

    async def attach() -> None:
        await inventory.save().run()
        await InventoryCredential.insert(InventoryCredential(inventory=inventory.id, credential=credential_id)).run()

    await in_app_loop(admin_client, attach)
    refused = await admin_client.delete(f"{URL}/{created['id']}")
    assert refused.status_code == 409
    assert "lab hosts" in refused.json()["detail"]
    assert (await admin_client.get(f"{URL}/{created['id']}")).status_code == 200

    await in_app_loop(admin_client, lambda: Inventory.delete().where(Inventory.id == inventory.id).run())
    assert (await admin_client.delete(f"{URL}/{created['id']}")).status_code == 204
    assert (await admin_client.get(f"{URL}/{created['id']}")).status_code == 404
    audit = (await admin_client.get("/api/v1/audit-log")).json()["items"]
    assert audit[0]["action"] == "credential.delete"
    assert audit[0]["detail"] == {"name": created["name"], "kind": "password", "fields": ["password", "username"]}


async def test_lists_page_and_filter_by_kind(admin_client: AsyncTestClient[Any]) -> None:
    for name in ("c", "a", "b"):
        await create(admin_client, "vault_password", {"password": name}, name=name)
    await create(admin_client, "password", {"username": "u", "password": "p"}, name="d")

    page = (await admin_client.get(URL, params={"size": 2, "kind": "vault_password"})).json()
    assert [item["name"] for item in page["items"]] == ["a", "b"]
    assert page["total"] == 3
    assert (await admin_client.get(URL)).json()["total"] == 4
    assert list(field_errors(await admin_client.get(URL, params={"kind": "nope"}))) == ["query.kind"]
