"""What reaches an LLM is redacted: each rule with what it must catch and what it must leave alone."""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from server.assistant.redaction import (
    MARKER,
    PRIVATE_KEY,
    TOKEN,
    VAULT,
    Redactor,
    entropy,
    is_secret_key,
    looks_random,
    organization_secrets,
)
from tests.conftest import SECRET_KEY
from tests.credentials.samples import ssh_keypair, tls_pair
from tests.factories import in_app_loop, make_organization

Client = AsyncTestClient[Any]
REDACT = Redactor()

# ansible-vault encrypt_string 'hunter2' --name db_password (and with --vault-id prod@…)
VAULTED = """db_password: !vault |
          $ANSIBLE_VAULT;1.1;AES256
          36643965303038376564326161396537326532353865386263373063653436343964626231633630
          3833616334346363663739326333633166313937626163370a643833366132353931323739323337
          30353965633731376538666264613030313535376135366661663861383564363661663862363237
          6436623163303232650a386539376561376637343832313433373762623066653630653238326562
          3338
"""
VAULTED_FILE = """$ANSIBLE_VAULT;1.2;AES256;prod
34326333366162303730653639393463626330333863316363663762383533623739346432346634
3031326437303435613339353537616639306561343965630a343534376233343933613835643561
6163
"""
PLAYBOOK = """---
- name: Deploy the web application
  hosts: webservers
  become: true
  vars:
    app_name: shop-frontend
    app_version: "2.14.0-rc.1+build.5"
    image: "nginx:1.27-alpine"
    registry_image: "registry.example.com:5000/team/shop-frontend:v2.14.0"
    app_root: /opt/shop-frontend/releases/20240101T120000
    db_password: "{{ vault_db_password }}"
    api_token: "{{ lookup('community.hashi_vault.hashi_vault', 'secret=kv/data/shop:token') }}"
    admin_password: "{{ lookup('ansible.builtin.env', 'ADMIN_PASSWORD') }}"
    password_file: /etc/shop/password.txt
    token_ttl: 3600
    secret_name: shop-tls
    auth_method: scram-sha-256
    deployment_id: 3f2c1a9e-8b7d-4c6e-9f10-2a3b4c5d6e7f
    release_commit: 9fceb02d0ae598e95dc970b74767f19372d61af8
    download_url: https://github.com/example/shop/releases/download/v2.14.0/shop_linux_amd64.tar.gz
    health_url: "http://{{ inventory_hostname }}:8080/healthz?verbose=true"
    pod_name: shop-frontend-7fb96c846b-xk2p9
    log_dir: /var/log/shop-frontend/access_logs/2024/01
    credential: 5b7c2d1e-0f3a-4b6c-8d9e-1a2b3c4d5e6f
  tasks:
    - name: Ensure the app user exists
      ansible.builtin.user:
        name: shop
        password: "{{ shop_user_password | password_hash('sha512') }}"
        update_password: on_create
        password_lock: false
        shell: /usr/sbin/nologin
    - name: Install packages
      ansible.builtin.apt:
        name: [nginx, python3-psycopg2, libpq-dev]
        state: present
        cache_valid_time: 3600
    - name: Create the database user
      community.postgresql.postgresql_user:
        name: shop
        password: "{{ db_password }}"
        login_password: "{{ postgres_admin_password }}"
      no_log: true
    - name: Old style module arguments
      mysql_user: name=shop password={{ db_password }} priv=*.*:ALL state=present
    - name: Render the configuration
      ansible.builtin.template:
        src: templates/nginx.conf.j2
        dest: /etc/nginx/sites-available/shop-frontend.conf
        mode: "0644"
        validate: nginx -t -c %s
      notify: Reload nginx
    - name: Run the container
      community.docker.docker_container:
        name: "{{ app_name }}"
        image: "{{ image }}"
        ports: ["8080:80"]
        env:
          DATABASE_URL: "postgresql://shop:{{ db_password }}@db.internal:5432/shop"
          SHOP_API_TOKEN: "{{ api_token }}"
        volumes:
          - /srv/shop/static:/usr/share/nginx/html:ro
    - name: Log in to the registry
      ansible.builtin.shell: >-
        echo "$REGISTRY_PASSWORD" | docker login --username {{ registry_user }} --password-stdin registry.example.com
      environment:
        REGISTRY_PASSWORD: "{{ registry_password }}"
      changed_when: false
    - name: Call the API
      ansible.builtin.uri:
        url: "https://api.example.com/v1/deployments/{{ deployment_id }}"
        method: POST
        headers:
          Authorization: "Bearer {{ api_token }}"
        body: {version: "{{ app_version }}", token: "{{ api_token }}"}
        status_code: [200, 201]
    - name: Show facts
      ansible.builtin.debug:
        msg: "{{ ansible_distribution }} {{ ansible_distribution_version }} on {{ ansible_architecture }}"
    - name: Apply a manifest
      kubernetes.core.k8s:
        definition:
          apiVersion: apps/v1
          kind: Deployment
          metadata:
            name: shop-frontend
            labels:
              app.kubernetes.io/version: "2.14.0"
          spec:
            template:
              spec:
                containers:
                  - name: web
                    image: ghcr.io/example/shop-frontend:2.14.0
                volumes:
                  - name: tls
                    secret:
                      secretName: shop-tls
    - name: Trust the deploy key
      ansible.posix.authorized_key:
        user: shop
        key: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGh5Zk9vYmFyQmF6MTIzNDU2Nzg5MGFiY2RlZg deploy@ci
  handlers:
    - name: Reload nginx
      ansible.builtin.service:
        name: nginx
        state: reloaded
"""


def test_a_typical_playbook_comes_through_unchanged() -> None:
    assert REDACT.text(PLAYBOOK) == PLAYBOOK
    assert REDACT.value({"content": PLAYBOOK}) == {"content": PLAYBOOK}


def test_typical_run_output_comes_through_unchanged() -> None:
    output = (
        "TASK [geerlingguy.docker : Ensure Docker is started and enabled at boot.] ******\n"
        "ok: [web-01.eu-west-1.compute.internal] => (item=python3-docker)\n"
        'fatal: [db]: FAILED! => {"changed": false, "msg": "password authentication failed for user \\"shop\\""}\n'
        'changed: [web-02] => {"dest": "/home/deploy/.ansible/collections/ansible_collections/community"}\n'
        "The deploy failed because the password was wrong; use --password to pass another one.\n"
        "PLAY RECAP *** web-01 : ok=12 changed=3 unreachable=0 failed=0 skipped=2 rescued=0 ignored=0\n"
    )
    assert REDACT.text(output) == output


def test_exact_credential_values_go_in_every_form_masking_knows() -> None:
    key = "-----BEGIN X-----\nQyNTUxOQAAACBhc2RmYXNkZmFzZGZhc2RmYXNk\n-----END X-----\n"
    redactor = Redactor(["s3cr3t-exact-value", key, "ab"])
    assert redactor.text("the s3cr3t-exact-value is here") == f"the {MARKER} is here"
    assert redactor.text(json.dumps({"k": key})) == json.dumps({"k": MARKER})
    assert redactor.text("ab abc") == "ab abc"  # too short to be told apart from text


@pytest.mark.parametrize(
    "text",
    [
        VAULTED,
        VAULTED_FILE,
        json.dumps({"content": VAULTED_FILE}),  # JSON-escaped, newlines as \n
        "vars:\n  " + VAULTED.replace("\n", "\n  "),
    ],
)
def test_vault_payloads_are_redacted(text: str) -> None:
    redacted = REDACT.text(text)
    assert VAULT in redacted
    assert "ANSIBLE_VAULT" not in redacted and "3833616334346363" not in redacted and "3338" not in redacted


def test_a_vault_block_keeps_its_key_and_the_keys_after_it() -> None:
    text = "vars:\n  " + VAULTED.replace("\n", "\n  ").rstrip() + "\n  db_host: db1\n  other: value\n"
    assert REDACT.text(text) == f"vars:\n  db_password: !vault |\n            {VAULT}\n  db_host: db1\n  other: value\n"


def test_vault_words_without_a_payload_stay() -> None:
    text = "Encrypt it with ansible-vault encrypt_string and paste the !vault block here."
    assert REDACT.text(text) == text


def test_private_key_blocks_are_redacted_and_public_keys_stay(tmp_path: Path) -> None:
    pair = ssh_keypair(tmp_path)
    for key in (pair.private_key, tls_pair().key, ssh_keypair(tmp_path, "rsa", pem=True).private_key):
        assert REDACT.text(f"key:\n{key}done") == f"key:\n{PRIVATE_KEY}\ndone"
        assert REDACT.text(json.dumps({"key": key})) == json.dumps({"key": PRIVATE_KEY + "\n"})
    cut_short = "\n".join(pair.private_key.splitlines()[:3])
    assert REDACT.text(cut_short) == PRIVATE_KEY
    assert REDACT.text(pair.public_key) == pair.public_key
    assert REDACT.text("-----BEGIN PUBLIC KEY----- is a header") == "-----BEGIN PUBLIC KEY----- is a header"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("password: hunter2", f'password: "{MARKER}"'),
        ('  api_token: "abc"', f'  api_token: "{MARKER}"'),
        ("- token: xyz # the old one", f'- token: "{MARKER}" # the old one'),
        ("ansible_become_pass: Sup3rS3cret!", f'ansible_become_pass: "{MARKER}"'),
        ('{"client_secret": "abc", "name": "x"}', f'{{"client_secret": "{MARKER}", "name": "x"}}'),
        ("{'password': 'hunter2', 'pin': 1234}", f"{{'password': '{MARKER}', 'pin': 1234}}"),
        ('{"db_password": 123456}', f'{{"db_password": "{MARKER}"}}'),
        ('"{\\"password\\": \\"abc\\"}"', f'"{{\\"password\\": \\"{MARKER}\\"}}"'),
        ("db_password=hunter2 user=bob", f"db_password={MARKER} user=bob"),
        ("export GITHUB_TOKEN=abc123xyz", f"export GITHUB_TOKEN={MARKER}"),
        ("PGPASSWORD = mypg", f"PGPASSWORD = {MARKER}"),
        ("mysql -u root --password=hunter2 -h db", f"mysql -u root --password={MARKER} -h db"),
        ("mysql -u root --password hunter2 -h db", f"mysql -u root --password {MARKER} -h db"),
        ('run --api-key "k 1" now', f'run --api-key "{MARKER}" now'),
        ("env: {DB_PASSWORD: abc, DB_USER: bob}", f"env: {{DB_PASSWORD: {MARKER}, DB_USER: bob}}"),
        ("clientSecret: abc", f'clientSecret: "{MARKER}"'),
        ("AWS_SECRET_ACCESS_KEY=abc", f"AWS_SECRET_ACCESS_KEY={MARKER}"),
        ("password: |\n  hunter2\n  more\nnext: 1\n", f"password: |\n  {MARKER}\nnext: 1\n"),
        ("postgresql://shop:hunter2@db:5432/shop", f"postgresql://shop:{MARKER}@db:5432/shop"),
    ],
)
def test_values_of_secret_looking_keys_are_redacted(text: str, expected: str) -> None:
    assert REDACT.text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        'password: "{{ db_password }}"',
        "password: {{ db_password }}",
        "password={{db_password}}",
        "login_password: \"{{ lookup('ansible.builtin.env', 'PGPASSWORD') }}\"",
        "password: lookup('env', 'X')",
        'password: ""',
        "password:",
        f"password: {MARKER}",
        f'"token": "{MARKER}"',
        "password: ********",
        "password: *db_password",
        "become_pass: $BECOME_PASS",
        "password_file: /etc/app/password.txt",
        "token_ttl: 3600",
        "secret_name: shop-tls",
        "update_password: on_create",
        "password_lock: false",
        "auth: true",
        "passwordless_sudo: yes",
        "credential: 5b7c2d1e-0f3a-4b6c-8d9e-1a2b3c4d5e6f",
        "compass: north",
        "url: https://{{ user }}:{{ pass }}@example.com",
        "echo $PASSWORD and --password-stdin <<< x",
        "use --password to set it",
    ],
)
def test_references_empty_values_and_other_keys_stay(text: str) -> None:
    assert REDACT.text(text) == text


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("password", True),
        ("db_password", True),
        ("GITHUB_TOKEN", True),
        ("ansible_become_pass", True),
        ("apiKey", True),
        ("api_key", True),
        ("APIKey", True),
        ("ssh_key_passphrase", True),
        ("private_key", True),
        ("x-auth-token", True),
        ("--password", True),
        ("PGPASSWORD", True),
        ("credentials", True),
        ("password2", True),
        ("password_file", False),
        ("token_ttl", False),
        ("secret_name", False),
        ("aws_access_key_id", False),
        ("bypass", False),
        ("key", False),
        ("update_password", False),
    ],
)
def test_secret_key_names(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


@pytest.mark.parametrize(
    "token",
    [
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_1234567890abcdefghijklmnopqrstuvwxyzAB",
        "gho_1234567890abcdefghijklmnopqrstuvwxyzAB",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ",
        "xoxb-123456789012-abcdefghijkl",
        "sk-proj-abc123def456ghi789jkl012",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ],
)
def test_well_known_token_shapes_are_redacted(token: str) -> None:
    assert REDACT.text(f"use {token} here") == f"use {TOKEN} here"


def test_bearer_and_aws_secret_keep_their_prefix() -> None:
    assert REDACT.text('curl -H "Authorization: Bearer abc123def456"') == f'curl -H "Authorization: Bearer {TOKEN}"'
    secret = "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    assert REDACT.text(secret) == f"aws_secret_access_key = {TOKEN}"


@pytest.mark.parametrize(
    "text",
    [
        "Bearer authentication is used",
        "the task-runner-for-nightly-builds-2024 job",
        "sk-learn-preprocessing-pipeline",
        "xoxo-hugs",
        "AKIA is the prefix of an access key id",
    ],
)
def test_token_look_alikes_stay(text: str) -> None:
    assert REDACT.text(text) == text


@pytest.mark.parametrize(
    "text",
    [
        "Zk9vYmFyQmF6MTIzNDU2Nzg5MGFiY2RlZjEyMw",  # base64
        "3q2+7wZk9vYmFyQmF6MTIz/NDU2Nzg5MGFiY2RlZg==",  # base64 with + and /
        "N2Fj_Zk9vYmFy-QmF6MTIzNDU2Nzg5MGFi",  # url-safe base64
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",  # 64 hex
    ],
)
def test_high_entropy_runs_are_redacted(text: str) -> None:
    assert REDACT.text(f"value {text} end") == f"value {TOKEN} end"


def test_only_the_random_part_of_a_url_path_goes() -> None:
    url = "https://hooks.slack.com/services/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"
    assert REDACT.text(url) == f"https://hooks.slack.com/services/T0A1B2C3D/B0123ABCD/{TOKEN}"


def test_an_image_digest_may_go_its_tag_stays() -> None:
    digest = "docker.io/library/nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31"
    assert REDACT.text(digest) == f"docker.io/library/nginx@sha256:{TOKEN}"
    assert REDACT.text("nginx:1.27-alpine") == "nginx:1.27-alpine"


@pytest.mark.parametrize(
    "text",
    [
        "3f2c1a9e-8b7d-4c6e-9f10-2a3b4c5d6e7f",  # a UUID
        "9fceb02d0ae598e95dc970b74767f19372d61af8",  # a git commit
        "/var/lib/postgresql/15/main/pg_wal/000000010000000000000001",
        "/opt/shop-frontend/releases/20240101T120000/static",
        "https://github.com/example/shop/releases/download/v2.14.0/shop_linux_amd64.tar.gz",
        "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        "k8s_cluster_api_endpoint_v2 ansible_facts_default_ipv4_address2",
        "MyApplicationConfigurationV2Settings",
        "shop-frontend-deployment-7fb96c846b-xk2p9",
        "2.14.0-rc.1+build.5 1.27.3-alpine3.19 v20240101-abcdef0",
        "ansible.builtin.lineinfile community.kubernetes.k8s_info",
    ],
)
def test_ids_paths_urls_versions_and_names_are_not_random(text: str) -> None:
    assert REDACT.text(text) == text


def test_the_entropy_threshold() -> None:
    assert entropy("aaaa") == 0 and entropy("abcd") == 2
    assert looks_random("Zk9vYmFyQmF6MTIzNDU2Nzg5MGFiY2RlZjEyMw")
    assert not looks_random("abababababab1212121212121212")  # letters and digits, but low entropy
    assert not looks_random("abcdefghijklmnopqrstuvwxyz")  # no digit: a word


def test_structured_values_are_redacted_by_key_and_by_text() -> None:
    data = {
        "name": "db",
        "password": "hunter2",
        "pin": 1234,
        "tokens": ["t-1", "{{ t }}", 7],
        "nested": [{"api_key": "k"}, ("password: x",)],
        "credentials": {"username": "admin", "password": "p"},
        "enabled": True,
        "db_password": "{{ vault_db_password }}",
    }
    original = copy.deepcopy(data)
    assert REDACT.value(data) == {
        "name": "db",
        "password": MARKER,
        "pin": 1234,
        "tokens": [MARKER, "{{ t }}", MARKER],
        "nested": [{"api_key": MARKER}, [f'password: "{MARKER}"']],
        "credentials": {"username": "admin", "password": MARKER},
        "enabled": True,
        "db_password": "{{ vault_db_password }}",
    }
    assert data == original


def test_no_log_results_are_replaced() -> None:
    event = {"task": "t", "no_log": True, "res": {"msg": "the secret is x"}, "task_args": {"a": "b"}}
    assert REDACT.value(event) == {"task": "t", "no_log": True, "res": MARKER, "task_args": MARKER}
    result = {"_ansible_no_log": True, "changed": True, "msg": "hidden", "stdout": "x"}
    assert REDACT.value({"result": result}) == {
        "result": {"_ansible_no_log": True, "changed": True, "msg": MARKER, "stdout": MARKER}
    }
    holder = {"_ansible_no_log": True, "result": {"msg": "x"}}
    assert REDACT.value(holder) == {"_ansible_no_log": True, "result": MARKER}
    shown = {"no_log": False, "res": {"msg": "fine"}}
    assert REDACT.value(shown) == shown


def test_messages_are_redacted_and_the_input_is_left_alone() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You help with Ansible."},
        {"role": "user", "content": "my password: hunter2, can you fix the play?"},
        {"role": "user", "content": [{"type": "text", "text": "token: abc"}, {"type": "image_url", "image_url": {}}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {
                        "name": "save_playbook",
                        "arguments": json.dumps({"content": "- hosts: all\n  vars:\n    db_password: s3cret\n"}),
                    },
                },
                {"id": "call_2", "type": "function", "function": {"name": "f", "arguments": "password=x not json"}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": json.dumps({"password": "p4ss", "ok": True})},
    ]
    original = copy.deepcopy(messages)
    redacted = Redactor(["hunter2"]).messages(messages)
    assert messages == original
    assert redacted[0] == messages[0]
    assert redacted[1]["content"] == f"my password: {MARKER}, can you fix the play?"
    assert redacted[2]["content"] == [{"type": "text", "text": f'token: "{MARKER}"'}, messages[2]["content"][1]]
    first, second = (call["function"] for call in redacted[3]["tool_calls"])
    assert json.loads(first["arguments"]) == {"content": f'- hosts: all\n  vars:\n    db_password: "{MARKER}"\n'}
    assert first["name"] == "save_playbook" and second["arguments"] == f"password={MARKER} not json"
    assert json.loads(redacted[4]["content"]) == {"password": MARKER, "ok": True}
    assert redacted[3]["tool_calls"][0]["id"] == "call_1" and redacted[4]["tool_call_id"] == "call_1"


def test_unchanged_json_keeps_its_exact_text() -> None:
    arguments = '{"content":  "- hosts: all"}'
    message = {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": arguments}}]}
    assert REDACT.messages([message])[0]["tool_calls"][0]["function"]["arguments"] == arguments


async def make_credential(
    client: Client, kind: str, inputs: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    body = {"name": f"{kind} {uuid.uuid4().hex[:6]}", "kind": kind, "inputs": inputs}
    response = await client.post("/api/v1/credentials", json=body, headers=headers or {})
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_organization_secrets_are_every_value_of_that_organization_only(
    admin_client: Client, tmp_path: Path
) -> None:
    key = ssh_keypair(tmp_path, passphrase="key-passphrase-1")
    password = await make_credential(admin_client, "password", {"username": "deploy", "password": "pw-value-1"})
    await make_credential(
        admin_client,
        "ssh_key",
        {"username": "deploy", "private_key": key.private_key, "passphrase": "key-passphrase-1"},
    )
    await make_credential(admin_client, "vault_password", {"vault_id": "prod", "password": "vault-pw-1"})
    other = await make_organization(admin_client)
    await make_credential(
        admin_client, "password", {"username": "x", "password": "other-org-pw"}, {"X-Organization-ID": other["id"]}
    )

    organization_id = uuid.UUID(password["organization_id"])
    values = await in_app_loop(admin_client, lambda: organization_secrets(SECRET_KEY, organization_id))
    expected = ["pw-value-1", key.private_key.strip(), "key-passphrase-1", "vault-pw-1"]
    assert sorted(value.strip() for value in values) == sorted(expected)
    redactor = Redactor(values)
    assert redactor.text(f"pw-value-1 {key.private_key}") == f"{MARKER} {MARKER}"
    assert await in_app_loop(admin_client, lambda: organization_secrets(SECRET_KEY, uuid.uuid4())) == []
