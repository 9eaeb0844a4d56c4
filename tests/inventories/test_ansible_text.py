"""Ansible inventory text ↔ document, judged by the real ``ansible-inventory``.

Every source is parsed, dumped as YAML and as INI, and ``ansible-inventory --list`` (effective
variables per host) and ``--list --export`` (variables where they were set) must give the same
JSON for the original and for both exports.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msgspec
import pytest
from ansible.parsing.utils.addresses import parse_address as ansible_parse_address
from ansible.plugins.inventory import BaseFileInventoryPlugin
from hypothesis import given, settings
from hypothesis import strategies as st

from server.errors import ValidationFailed
from server.inventories import ansible_ini, ansible_text
from server.inventories.spec import Document, Group, Host

DATA = Path(__file__).parent / "data"
EXAMPLES = Path(__file__).parents[2] / "inventories"
VENV_BIN = Path(sys.executable).parent
SOURCES = sorted(DATA.glob("*.*")) + sorted(p for p in EXAMPLES.glob("*.*") if p.suffix in (".yml", ".ini"))
FIELD = "body.content"


def fmt_of(path: Path) -> ansible_text.Format:
    return "ini" if path.suffix == ".ini" else "yaml"


def ansible_inventory(path: Path, home: Path, *, export: bool) -> Any:
    """``ansible-inventory --list`` with only the plugin of the file's format, in a clean environment."""
    env = {
        "PATH": f"{VENV_BIN}:/usr/bin:/bin",
        "HOME": str(home),
        "LANG": "C.UTF-8",
        "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
        "ANSIBLE_INVENTORY_ENABLED": fmt_of(path),
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
        "ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED": "True",
        "ANSIBLE_NOCOLOR": "1",
    }
    argv = [str(VENV_BIN / "ansible-inventory"), "-i", str(path), "--list", *(["--export"] if export else [])]
    result = subprocess.run(argv, env=env, cwd=home, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def inventories(paths: list[Path], home: Path) -> list[Any]:
    """``--list`` and ``--list --export`` of each path, run side by side."""
    jobs = [(path, export) for path in paths for export in (False, True)]
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(lambda job: ansible_inventory(job[0], home, export=job[1]), jobs))


def by_name(document: Document) -> tuple[Any, ...]:
    """The document without its list orders (an export lists ungrouped hosts first)."""
    return document.vars, {h.name: h for h in document.hosts}, {g.name: g for g in document.groups}


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_exports_read_the_same_in_ansible(source: Path, tmp_path: Path) -> None:
    document = ansible_text.parse(source.read_text(), fmt_of(source))
    exports = [tmp_path / "export.yml", tmp_path / "export.ini"]
    for path in exports:
        path.write_text(ansible_text.dump(document, fmt_of(path)))

    original, original_export, *exported = inventories([source, *exports], tmp_path)

    assert exported == [original, original_export] * 2
    for path in exports:
        assert by_name(ansible_text.parse(path.read_text(), fmt_of(path))) == by_name(document)


def test_nested_yaml_reads_as_ansible_does() -> None:
    document = ansible_text.parse((DATA / "nested.yml").read_text(), "yaml")

    hosts = {h.name: h for h in document.hosts}
    groups = {g.name: g for g in document.groups}
    assert list(hosts)[:3] == ["bastion.example.com", "localhost", "web01.example.com"]
    assert hosts["bastion.example.com"].vars == {"ansible_port": 2200, "ansible_user": "admin"}
    assert groups["web"].hosts == [*(f"web0{i}.example.com" for i in range(1, 5)), "www-a", "www-b", "www-c"]
    assert groups["db"].hosts == ["db1", "db3", "db5", "10.0.0.10", "10.0.0.11", "10.0.0.12", "2001:db8::1"]
    assert hosts["10.0.0.11"].vars == {"ansible_port": 5432}
    assert hosts["2001:db8::1"].vars == {"ansible_port": 2201}
    assert hosts["db1"].vars == {"role": "monitor"}
    assert hosts["db3"].vars == {"role": "replica", "lag": 1.5}
    assert hosts["web01.example.com"].vars == {"ansible_port": 2222, "http_port": 8080}
    assert groups["europe"].children == ["web", "db"]
    assert groups["monitoring"].children == ["db"]
    assert groups["production"].vars == {"env": "prod", "replicas": 3}
    assert document.vars == {"ntp_server": "ntp.example.com", "dns": ["10.0.0.2", "10.0.0.3"]}
    assert (hosts["app1"].kind, hosts["pod1"].kind, hosts["localhost"].kind) == ("docker", "kubernetes", None)


def test_ini_reads_as_ansible_does() -> None:
    document = ansible_text.parse((DATA / "typed.ini").read_text(), "ini")

    hosts = {h.name: h for h in document.hosts}
    groups = {g.name: g for g in document.groups}
    assert hosts["fe01.example.com"].vars == {
        "ansible_port": 2200,
        "tier": "shared",
        "weight": 1.5,
        "enabled": True,
    }
    assert hosts["fe02.example.com"].vars["ansible_port"] == 2222
    assert groups["backends"].hosts == ["be1", "be5", "be9", "fe01.example.com"]
    assert groups["backends"].vars == {
        "pool": ["a", "b"],
        "timeout": 30,
        "label": "30",
        "empty": "",
        "quoted": "two words",
    }
    assert groups["frontends"].vars["proxy"] == {"host": "proxy.example.com", "port": 3128}
    assert groups["webservers"].children == ["frontends", "backends"]
    assert hosts["pg1"].vars["path"] == "C:\\temp"
    assert hosts["2001:db8::5"].vars == {"ansible_port": 2202, "ipv6": "yes"}
    assert {"solo", "lonely", "floating"} <= set(hosts) and not any(
        name in g.hosts for g in document.groups for name in ("solo", "lonely", "floating")
    )
    assert hosts["c1"].kind == "docker"
    assert document.vars == {"ntp_server": "ntp.example.com", "retries": 3}


def test_dump_is_deterministic_and_survives_storage() -> None:
    document = ansible_text.parse((DATA / "nested.yml").read_text(), "yaml")
    stored = msgspec.json.decode(msgspec.json.encode(document), type=Document)

    for fmt in ("yaml", "ini"):
        assert ansible_text.dump(document, fmt) == ansible_text.dump(stored, fmt) == ansible_text.dump(document, fmt)


def test_typed_fields_are_exported_as_ansible_variables() -> None:
    document = Document(
        user="deploy",
        vars={"x": 1},
        hosts=[Host(name="h1", address="10.0.0.1", port=2222)],
        groups=[Group(name="engines", kind="docker", docker_host="unix:///run/docker.sock", hosts=["h1"])],
    )

    reread = ansible_text.parse(ansible_text.dump(document, "yaml"), "yaml")
    assert reread == ansible_text.parse(ansible_text.dump(document, "ini"), "ini")
    assert reread.vars == {"ansible_user": "deploy", "x": 1}
    assert reread.hosts == [Host(name="h1", vars={"ansible_host": "10.0.0.1", "ansible_port": 2222})]
    assert reread.groups[0].vars == {
        "docker_host": "unix:///run/docker.sock",
        "ansible_docker_docker_host": "unix:///run/docker.sock",
        "ansible_connection": "local",
    }


def test_ini_writes_dates_as_strings() -> None:
    document = ansible_text.parse("all:\n  vars:\n    day: 2024-05-01\n", "yaml")

    assert ansible_text.dump(document, "yaml") == "all:\n  vars:\n    day: 2024-05-01\n"
    assert ansible_text.parse(ansible_text.dump(document, "ini"), "ini").vars == {"day": "2024-05-01"}


def test_empty_inventories() -> None:
    for fmt in ("yaml", "ini"):
        document = ansible_text.parse("", fmt)
        assert document == Document()
        assert ansible_text.parse(ansible_text.dump(document, fmt), fmt) == document


BAD_YAML = [
    ("all:\n  hosts:\n    a: [1,\n", 4, "invalid YAML"),
    ("all:\n  vars:\n    secret: !vault |\n      $ANSIBLE_VAULT;1.1;AES256\n      6162\n", 3, "!vault"),
    ("all:\n  hosts:\n    web1: {x: !custom y}\n", 3, "unsupported YAML tag"),
    ("all:\n  vars:\n    x: !!binary aGVsbG8=\n", 3, "unsupported value"),
    ("all:\n  hosts:\n    - web1\n", 3, "must be a mapping, not a list"),
    ("web:\n  hosts:\n    bad/name:\n", 3, "invalid host name 'bad/name'"),
    ("web servers:\n  hosts:\n    a:\n", 1, "invalid group name 'web servers'"),
    ("all:\n  vars:\n    ansible_password: x\n", 3, "'ansible_password' of group 'all' looks like a secret"),
    ("all:\n  vars:\n    bad-name: x\n", 3, "'bad-name' of group 'all' is not a valid name"),
    ("all:\n  children:\n    web:\n      host:\n        a:\n", 4, "unexpected key 'host' in group 'web'"),
    ("web:\n  hosts:\n    10:\n", 3, "must be a string"),
    ("web:\n  hosts:\n    a: 5\n", 3, "variables of host 'a' must be a mapping"),
    ("web:\n  hosts:\n    web[1:x]:\n", 3, "host pattern 'web[1:x]'"),
    ("web:\n  hosts:\n    web[01:1]:\n", 3, "equal-length"),
    ("plugin: community.docker.docker_containers\n", 1, "inventory plugin's configuration"),
    ("ungrouped:\n  vars:\n    x: 1\n", 3, "variables of 'ungrouped'"),
    ("a:\n  children:\n    b:\n      children:\n        a:\n", 5, "groups nest in a cycle: a → b → a"),
    ("a:\n  children:\n    all:\n", 3, "'all' cannot be a child of group 'a'"),
    ("- just\n- a list\n", 1, "the inventory (a mapping of groups) must be a mapping"),
    ("all:\n  hosts: {a: 1}\n---\nall:\n", 3, "invalid YAML"),
    ('all:\n  hosts:\n    "a\\n":\n', 3, "invalid host name 'a\\n'"),
    ('all:\n  vars:\n    "x\\n": 1\n', 3, "variable 'x\\n' of group 'all' is not a valid name"),
]
BAD_INI = [
    ("[web servers]\n", 1, "invalid section"),
    ("[web]\nh1\n[web:nope]\n", 3, "unknown type 'nope'"),
    ("[web:vars]\nx=1\n", 1, "[web:vars] names a group that is never declared"),
    ("[web]\nh1\n[prod:children]\nweb\ndb\n", 5, "[prod:children] includes undeclared group 'db'"),
    ("[web]\nhost1 novalue\n", 2, "expected key=value after the host"),
    ("[web]\nhost1 a='unclosed\n", 2, "No closing quotation"),
    ("[web]\nh1\n[web:vars]\njust text\n", 4, "expected key=value in [web:vars]"),
    ("[web]\nh1 ansible_ssh_pass=x\n", 2, "'ansible_ssh_pass' of host 'h1' looks like a secret"),
    ("[web]\nweb[01:1]\n", 2, "equal-length"),
    ("[web]\nh1:\n", 2, "ends in ':'"),
    ("[ungrouped:vars]\nx=1\n", 2, "variables of 'ungrouped'"),
    ("---\nall:\n", 1, "is this file YAML?"),
    ("[a:children]\nb\n[b:children]\na\n", 4, "groups nest in a cycle"),
    ("[web.servers]\nh1\n", 1, "invalid group name 'web.servers'"),
    ("[web]\nh1 x='{[1]: 2}'\n", 2, "cannot read value"),
    ("h1\n[web]\nh2\n[web:children]\nweb\n", 5, "group 'web' cannot contain itself"),
]


@pytest.mark.parametrize(
    ("fmt", "content", "line", "message"), [("yaml", *b) for b in BAD_YAML] + [("ini", *b) for b in BAD_INI]
)
def test_bad_input_names_the_field_and_the_line(
    fmt: ansible_text.Format, content: str, line: int, message: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        ansible_text.parse(content, fmt, field=FIELD)

    error = caught.value.errors[0]
    assert error.field == FIELD
    assert error.message.startswith(f"line {line}: "), error.message
    assert message in error.message


def test_deep_nesting_is_refused() -> None:
    with pytest.raises(ValidationFailed, match="nest too deeply"):
        ansible_text.parse("all:\n  vars:\n    x: " + "[" * 5000 + "]" * 5000 + "\n", "yaml")


def test_every_secret_variable_is_reported_once() -> None:
    content = "[web]\nh1 db_password=x api_token=y\nh2 db_password=z\n"
    with pytest.raises(ValidationFailed) as caught:
        ansible_text.parse(content, "ini")
    assert [e.message for e in caught.value.errors] == [
        "line 2: variable 'db_password' of host 'h1' looks like a secret; "
        "store it in a credential (encrypted, write-only) and reference it",
        "line 2: variable 'api_token' of host 'h1' looks like a secret; "
        "store it in a credential (encrypted, write-only) and reference it",
    ]


PATTERNS = [
    "web1",
    "web1:22",
    "web[01:10].example.com",
    "web[01:10:3]",
    "db-[a:f]",
    "db-[A:c]",
    "x[1:3]-[a:b]",
    "[x:y]",
    "10.0.0.[1:5]",
    "10.0.[0:1].[250:255]:2222",
    "192.168.0.1",
    "192.168.0.1:22",
    "::1",
    "[::1]:22",
    "[2001:db8::1]:2222",
    "fe80::1",
    "2001:db8::[a:f]",
    "[web01]:22",
    "[web1:22]:33",
    "a@b:22",
    "host_name",
    "-bad-",
    "web[1:3]:2222",
    "web[:3]",
    "sub.web[1:2].example[a:b].com",
]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_host_patterns_expand_as_in_ansible(pattern: str) -> None:
    try:
        expected = BaseFileInventoryPlugin()._expand_hostpattern(pattern)
    except Exception:  # noqa: BLE001 - any Ansible error: ours must refuse too
        with pytest.raises(ValueError):
            ansible_text.expand_host_pattern(pattern)
    else:
        assert ansible_text.expand_host_pattern(pattern) == expected
    try:
        address = ansible_parse_address(pattern, allow_ranges=True)
    except Exception:  # noqa: BLE001
        with pytest.raises(ValueError):
            ansible_text.parse_address(pattern)
    else:
        assert ansible_text.parse_address(pattern) == address


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="ab012:[]-._@", max_size=10))
def test_any_host_pattern_expands_as_in_ansible(pattern: str) -> None:
    test_host_patterns_expand_as_in_ansible(pattern)


def test_huge_ranges_are_refused() -> None:
    with pytest.raises(ValidationFailed, match="more than 100000 hosts"):
        ansible_text.parse("[web]\nweb[0:9999999]\n", "ini")
    with pytest.raises(ValidationFailed, match="more than 100000 hosts"):
        ansible_text.parse("[web]\na[0:999]\nb[0:99999]\n", "ini")


SCALARS = (
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)))
    | st.sampled_from(["5", "True", "None", "[1]", "'x'", " a ", "", "a=b", "#x", "1e3", "0x1", "...", "1j"])
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.booleans()
    | st.none()
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_any_value_reads_back_the_same(value: Any) -> None:
    document = Document(
        vars={"v": value},
        hosts=[Host(name="h", vars={"v": value})],
        groups=[Group(name="g", hosts=["h"], vars={"v": value})],
    )
    for fmt in ("yaml", "ini"):
        assert ansible_text.parse(ansible_text.dump(document, fmt), fmt) == document


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=" \t\r\n\x0b\xa0ab=#'\"\\;"))
def test_host_lines_split_as_shlex_does(line: str) -> None:
    try:
        expected = shlex.split(line, comments=True)
    except ValueError:
        with pytest.raises(ValueError):
            ansible_ini.split(line)
    else:
        assert ansible_ini.split(line) == expected
