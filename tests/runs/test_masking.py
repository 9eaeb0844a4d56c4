"""Credential values are masked in a run's events and stdout, even when a task prints them on purpose."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from litestar.testing import AsyncTestClient

from server.credentials.masking import MASK, Masker, forms, secret_values
from server.credentials.service import Revealed
from tests.credentials.samples import ssh_keypair, tls_pair
from tests.factories import files_containing
from tests.runs.test_launch import make_inventory, make_playbook, wait_finished
from tests.runs.test_stream import connect, receive_all

Client = AsyncTestClient[Any]
PASSWORD = "Zq7-masked-Pa55word"
PRINTS_AND_FAILS = """- name: leaks a password twice
  hosts: all
  gather_facts: false
  tasks:
    - name: print it
      ansible.builtin.debug:
        msg: "{{ ansible_password }}"
    - name: fail with it
      ansible.builtin.fail:
        msg: "the password is {{ ansible_password }}"
"""
PRINTS_MULTI_LINE = """- name: leaks multi-line secrets
  hosts: all
  gather_facts: false
  tasks:
    - name: print the stack's certificate key
      ansible.builtin.debug:
        msg: "{{ windflow_secrets.tls_key }}"
    - name: print the stack's token
      ansible.builtin.debug:
        var: windflow_secrets.api_token
    - name: print the SSH key, read back from its file
      ansible.builtin.debug:
        msg: "{{ lookup('file', ansible_ssh_private_key_file) }}"
    - name: print it line by line, as a YAML block would
      ansible.builtin.command: cat {{ ansible_ssh_private_key_file }}
      changed_when: false
"""


async def make_credential(client: Client, kind: str, inputs: dict[str, Any]) -> dict[str, Any]:
    body = {"name": f"{kind} {uuid.uuid4().hex[:6]}", "kind": kind, "inputs": inputs}
    response = await client.post("/api/v1/credentials", json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


async def outputs(client: Client, run_id: str) -> tuple[str, str]:
    """The run's stored events (the whole JSON) and its stdout, as clients get them."""
    events = await client.get(f"/api/v1/runs/{run_id}/events", params={"limit": 1000})
    assert events.status_code == 200 and events.json()["finished"], events.text
    stdout = await client.get(f"/api/v1/runs/{run_id}/stdout")
    assert stdout.status_code == 200
    return events.text, stdout.text


def data_dir(client: Client) -> Path:
    return Path(client.app.state.settings.data_dir)


async def test_an_inventory_password_printed_and_echoed_by_a_failure_is_masked(admin_client: Client) -> None:
    credential = await make_credential(admin_client, "password", {"username": "deploy", "password": PASSWORD})
    inventory = await make_inventory(
        admin_client,
        {"name": "masked", "hosts": [{"name": "controller", "connection": "local", "credential": credential["id"]}]},
    )
    playbook = await make_playbook(admin_client, PRINTS_AND_FAILS, "leaks")
    launched = await admin_client.post(
        "/api/v1/runs", json={"playbook_id": playbook["id"], "inventory_id": inventory["id"]}
    )
    assert launched.status_code == 201, launched.text
    async with connect(admin_client, launched.json()["id"]) as ws:
        streamed, _ = receive_all(ws)
    run = await wait_finished(admin_client, launched.json()["id"])
    assert run["status"] == "failed", run

    live = json.dumps(streamed)
    assert PASSWORD not in live and f"the password is {MASK}" in live
    events, stdout = await outputs(admin_client, run["id"])
    assert PASSWORD not in events and PASSWORD not in stdout
    assert f"the password is {MASK}" in stdout and stdout.count(MASK) >= 2
    assert "runner_on_failed" in events and f"the password is {MASK}" in events
    assert files_containing(data_dir(admin_client), PASSWORD) == []


async def test_multi_line_run_credentials_are_masked_whole_escaped_and_by_line(
    admin_client: Client, tmp_path: Path
) -> None:
    key = ssh_keypair(tmp_path).private_key
    tls_key = tls_pair().key
    token = "tok-" + uuid.uuid4().hex
    ssh = await make_credential(admin_client, "ssh_key", {"username": "deploy", "private_key": key})
    values = json.dumps({"tls_key": tls_key, "api_token": token})
    stack = await make_credential(admin_client, "stack_secrets", {"values": values})
    inventory = await make_inventory(admin_client, {"name": "local", "hosts": [{"name": "c", "connection": "local"}]})
    playbook = await make_playbook(admin_client, PRINTS_MULTI_LINE, "multi-line leaks")
    body = {"playbook_id": playbook["id"], "inventory_id": inventory["id"], "credentials": [ssh["id"], stack["id"]]}
    launched = await admin_client.post("/api/v1/runs", json=body)
    assert launched.status_code == 201, launched.text
    run = await wait_finished(admin_client, launched.json()["id"])
    assert run["status"] == "successful", run

    events, stdout = await outputs(admin_client, run["id"])
    lines = [line.strip() for secret in (key, tls_key) for line in secret.splitlines() if len(line.strip()) >= 8]
    for needle in [token, *lines]:
        assert needle not in events and needle not in stdout, needle
        assert files_containing(data_dir(admin_client), needle) == [], needle
    assert "BEGIN OPENSSH PRIVATE KEY" not in stdout and stdout.count(MASK) >= 4


def revealed(kind: str, secret: dict[str, str]) -> Revealed:
    return Revealed(id=uuid.uuid4(), name=kind, kind=kind, fields={}, secret=secret)


def test_the_longest_value_wins_and_overlapping_values_are_masked_whole() -> None:
    masker = Masker(["secret", "secret-and-more", "and-more-tail"])
    assert masker.text("a secret-and-more b") == f"a {MASK} b"
    assert masker.text("x secret-and-more-tail y") == f"x {MASK} y"
    assert masker.text("secretsecret") == MASK
    assert masker.text("no value here") == "no value here"


def test_values_shorter_than_four_characters_are_not_masked() -> None:
    masker = Masker(["abc", "  ab  ", ""])
    assert not masker
    assert masker.text("abc ab") == "abc ab"
    assert Masker(["abcd"]).text("abc abcd") == f"abc {MASK}"


def test_a_multi_line_value_is_masked_raw_json_escaped_and_line_by_line() -> None:
    key = "-----BEGIN KEY-----\nAAAAB3NzaC1yc2EAAAADAQAB\nshort\n-----END KEY-----\n"
    masker = Masker([key])
    assert masker.text(f"key={key}.") == f"key={MASK}."
    assert masker.text(json.dumps({"msg": key})) == json.dumps({"msg": MASK})
    assert masker.text(json.dumps({"msg": key.strip()})) == json.dumps({"msg": MASK})
    assert masker.text(json.dumps(json.dumps({"msg": key}))) == json.dumps(json.dumps({"msg": "X"})).replace("X", MASK)
    # One line quoted elsewhere is masked; a short line ("short") alone is not a secret of its own.
    assert masker.text("  AAAAB3NzaC1yc2EAAAADAQAB\n short") == f"  {MASK}\n short"
    assert "short" not in forms(key) and "AAAAB3NzaC1yc2EAAAADAQAB" in forms(key)


def test_nested_structures_are_masked_keys_and_values() -> None:
    masker = Masker(["hunter22"])
    data = {"res": {"msg": "pw hunter22", "list": ["hunter22", 3, None, ("hunter22",)]}, "hunter22": True, 7: "x"}
    assert masker.value(data) == {"res": {"msg": f"pw {MASK}", "list": [MASK, 3, None, (MASK,)]}, MASK: True, 7: "x"}
    assert data["res"]["msg"] == "pw hunter22"  # the input is left as it was


def test_without_values_everything_comes_back_as_it_is() -> None:
    masker = Masker()
    data = {"a": ["b"]}
    assert not masker and masker.value(data) is data and masker.text("anything") == "anything"
    assert not Masker.of([])


def test_every_secret_field_counts_and_stack_secrets_give_each_value() -> None:
    credentials = [
        revealed("ssh_key", {"private_key": "KEY-TEXT", "passphrase": "phrase-1"}),
        revealed("stack_secrets", {"values": json.dumps({"a": "alpha-1", "n": 123456, "on": True, "l": ["beta-2"]})}),
        revealed("stack_secrets", {"values": "not json at all"}),
    ]
    assert secret_values(credentials) == ["KEY-TEXT", "phrase-1", "alpha-1", "123456", "beta-2", "not json at all"]
    masker = Masker.of(credentials)
    assert masker.text("alpha-1 123456 True beta-2") == f"{MASK} {MASK} True {MASK}"
