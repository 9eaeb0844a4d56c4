"""Users, organizations and memberships: the rules beyond who may call what."""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from tests.conftest import ADMIN_PASSWORD
from tests.factories import PASSWORD, headers_for, make_organization, make_user


async def test_create_user_rejects_a_taken_email_case_insensitively(admin_client: AsyncTestClient[Any]) -> None:
    user = await make_user(admin_client, "viewer")
    body = {"email": user["email"].upper(), "password": PASSWORD, "role": "viewer"}
    response = await admin_client.post("/api/v1/users", json=body)
    assert response.status_code == 409
    assert response.json()["code"] == "CONFLICT"


async def test_only_a_superadmin_creates_superadmins(admin_client: AsyncTestClient[Any]) -> None:
    org_admin = await headers_for(admin_client, await make_user(admin_client, "admin"))
    body = {"email": "boss@windflow.test", "password": PASSWORD, "role": "admin", "is_superadmin": True}
    assert (await admin_client.post("/api/v1/users", json=body, headers=org_admin)).status_code == 403
    response = await admin_client.post("/api/v1/users", json=body)
    assert response.status_code == 201
    assert response.json()["is_superadmin"] is True


async def test_users_list_only_the_current_organization(admin_client: AsyncTestClient[Any]) -> None:
    in_a = await make_user(admin_client, "operator")
    org_b = await make_organization(admin_client)
    in_b = await make_user(admin_client, "viewer", headers={"X-Organization-ID": org_b["id"]})
    emails_a = {u["email"] for u in (await admin_client.get("/api/v1/users")).json()["items"]}
    assert in_a["email"] in emails_a and in_b["email"] not in emails_a
    response = await admin_client.get("/api/v1/users", headers={"X-Organization-ID": org_b["id"]})
    emails_b = {u["email"]: u["role"] for u in response.json()["items"]}
    assert emails_b[in_b["email"]] == "viewer" and in_a["email"] not in emails_b


async def test_an_organization_keeps_its_last_admin(admin_client: AsyncTestClient[Any]) -> None:
    org = await make_organization(admin_client)
    me = (await admin_client.get("/api/v1/users/me")).json()
    members = f"/api/v1/organizations/{org['id']}/members/{me['id']}"
    response = await admin_client.patch(members, json={"role": "viewer"})
    assert response.status_code == 409
    assert "at least one admin" in response.json()["detail"]
    assert (await admin_client.delete(members)).status_code == 409
    other = await make_user(admin_client, "admin", headers={"X-Organization-ID": org["id"]})
    assert (await admin_client.patch(members, json={"role": "viewer"})).status_code == 200
    response = await admin_client.get(f"/api/v1/organizations/{org['id']}/members/{other['id']}")
    assert response.json()["role"] == "admin"


async def test_removing_a_user_deletes_the_account_only_when_it_belongs_nowhere(
    admin_client: AsyncTestClient[Any],
) -> None:
    lone = await make_user(admin_client, "viewer")
    shared = await make_user(admin_client, "viewer")
    org_b = await make_organization(admin_client)
    added = await admin_client.post(
        f"/api/v1/organizations/{org_b['id']}/members", json={"user_id": shared["id"], "role": "operator"}
    )
    assert added.status_code == 201
    assert (await admin_client.delete(f"/api/v1/users/{lone['id']}")).status_code == 204
    assert (await admin_client.delete(f"/api/v1/users/{shared['id']}")).status_code == 204
    gone = await admin_client.post("/api/v1/auth/login", json={"email": lone["email"], "password": PASSWORD})
    assert gone.status_code == 401
    still = await headers_for(admin_client, shared)
    me = (await admin_client.get("/api/v1/users/me", headers=still)).json()
    assert [m["organization_id"] for m in me["memberships"]] == [org_b["id"]]
    assert me["current_organization_id"] == org_b["id"]


async def test_nobody_removes_or_disables_themselves(admin_client: AsyncTestClient[Any]) -> None:
    me = (await admin_client.get("/api/v1/users/me")).json()
    assert (await admin_client.delete(f"/api/v1/users/{me['id']}")).status_code == 409
    assert (await admin_client.patch(f"/api/v1/users/{me['id']}", json={"is_active": False})).status_code == 409


async def test_account_changes_need_admin_rights_everywhere_the_user_belongs(
    admin_client: AsyncTestClient[Any],
) -> None:
    org_admin = await headers_for(admin_client, await make_user(admin_client, "admin"))
    shared = await make_user(admin_client, "viewer")
    org_b = await make_organization(admin_client)
    await admin_client.post(
        f"/api/v1/organizations/{org_b['id']}/members", json={"user_id": shared["id"], "role": "viewer"}
    )
    url = f"/api/v1/users/{shared['id']}"
    assert (await admin_client.patch(url, json={"is_active": False}, headers=org_admin)).status_code == 403
    # A role in the admin's own organization is theirs to change.
    response = await admin_client.patch(url, json={"role": "operator"}, headers=org_admin)
    assert response.status_code == 200 and response.json()["role"] == "operator"


async def test_admin_password_reset_ends_the_users_sessions(admin_client: AsyncTestClient[Any]) -> None:
    user = await make_user(admin_client, "operator")
    login = await admin_client.post("/api/v1/auth/login", json={"email": user["email"], "password": PASSWORD})
    refresh_token = login.json()["refresh_token"]
    response = await admin_client.patch(f"/api/v1/users/{user['id']}", json={"password": "brand-new-password"})
    assert response.status_code == 200
    assert (await admin_client.post("/api/v1/auth/refresh", json={"refresh_token": refresh_token})).status_code == 401
    fresh = await admin_client.post(
        "/api/v1/auth/login", json={"email": user["email"], "password": "brand-new-password"}
    )
    assert fresh.status_code == 200


async def test_organization_names_are_unique(admin_client: AsyncTestClient[Any]) -> None:
    org = await make_organization(admin_client, name="Platform")
    assert (await admin_client.post("/api/v1/organizations", json={"name": "Platform"})).status_code == 409
    other = await make_organization(admin_client, name="Apps")
    response = await admin_client.patch(f"/api/v1/organizations/{other['id']}", json={"name": "Platform"})
    assert response.status_code == 409
    assert org["role"] == "admin"


async def test_adding_an_existing_member_or_unknown_user(admin_client: AsyncTestClient[Any]) -> None:
    me = (await admin_client.get("/api/v1/users/me")).json()
    members = f"/api/v1/organizations/{me['current_organization_id']}/members"
    response = await admin_client.post(members, json={"user_id": me["id"], "role": "viewer"})
    assert response.status_code == 409
    response = await admin_client.post(
        members, json={"user_id": "00000000-0000-4000-8000-000000000000", "role": "viewer"}
    )
    assert response.status_code == 404


async def test_audit_log_records_who_did_what_without_secrets(admin_client: AsyncTestClient[Any]) -> None:
    response = await admin_client.post(
        "/api/v1/users", json={"email": "audited@windflow.test", "password": "audited-password", "role": "viewer"}
    )
    request_id = response.headers["x-request-id"]
    log = await admin_client.get("/api/v1/audit-log", params={"size": 100})
    assert log.status_code == 200
    entries = [e for e in log.json()["items"] if e["action"] == "user.create" and e["request_id"] == request_id]
    assert len(entries) == 1
    assert entries[0]["actor_email"] == "admin@windflow.test"
    assert entries[0]["target_id"] == response.json()["id"]
    assert "audited-password" not in log.text and ADMIN_PASSWORD not in log.text


async def test_a_rejected_update_changes_nothing(admin_client: AsyncTestClient[Any]) -> None:
    user = await make_user(admin_client, "viewer")
    taken = await make_user(admin_client, "viewer")
    response = await admin_client.patch(
        f"/api/v1/users/{user['id']}", json={"role": "operator", "full_name": "X", "email": taken["email"]}
    )
    assert response.status_code == 409
    after = (await admin_client.get(f"/api/v1/users/{user['id']}")).json()
    assert (after["role"], after["full_name"], after["email"]) == ("viewer", "", user["email"])
