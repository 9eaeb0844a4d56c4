"""The parse stage, and a good playbook through every stage (the one full run of this file)."""

from __future__ import annotations

from server.assistant.checks import check_playbook
from server.assistant.checks.parse import parse_playbook
from server.assistant.evidence import PLAYBOOK_STAGES, Checked

GOOD = """\
---
- name: Serve the site
  hosts: web
  gather_facts: false
  tasks:
    - name: Install nginx
      ansible.builtin.apt:
        name: nginx
        state: present
      notify: Restart nginx

    - name: Write the home page
      ansible.builtin.copy:
        dest: /var/www/html/index.html
        content: "hello\\n"
        mode: "0644"

  handlers:
    - name: Restart nginx
      ansible.builtin.service:
        name: nginx
        state: restarted
"""


_results: dict[str, Checked] = {}


async def good() -> Checked:
    """The full check of GOOD, run once for the tests that read it."""
    if GOOD not in _results:
        _results[GOOD] = await check_playbook(GOOD)
    return _results[GOOD]


async def test_a_good_playbook_passes_every_stage() -> None:
    checked = await good()
    assert [e.stage for e in checked.evidence] == list(PLAYBOOK_STAGES)
    assert [e.status for e in checked.evidence] == ["passed"] * 5, checked.evidence
    assert checked.passed
    assert checked.content == GOOD  # lint had nothing to change
    assert all(e.duration_ms >= 0 and e.detail for e in checked.evidence)


async def test_the_good_playbook_evidence_carries_its_data() -> None:
    evidence = {e.stage: e for e in (await good()).evidence}
    assert evidence["parse"].data == {"plays": 1, "tasks": 3}
    assert evidence["modules"].data["modules"] == {
        "ansible.builtin.apt": "ansible.builtin.apt",
        "ansible.builtin.copy": "ansible.builtin.copy",
        "ansible.builtin.service": "ansible.builtin.service",
    }
    assert evidence["lint"].data == {"violations": [], "diff": "", "fixed": ""}
    assert evidence["safety"].data == {"findings": []}
    assert evidence["parse"].as_dict()["stage"] == "parse"


async def test_a_yaml_error_names_its_line_and_skips_the_rest() -> None:
    content = "- name: Broken\n  hosts: all\n  tasks:\n    - name: Bad\n      debug: msg: [unclosed\n"
    checked = await check_playbook(content)
    parse = checked.evidence[0]
    assert parse.status == "failed"
    assert "line 5" in parse.detail
    assert parse.data["line"] == 5
    assert [e.status for e in checked.evidence[1:]] == ["skipped"] * 4
    assert all("parse stage failed" in e.detail for e in checked.evidence[1:])
    assert not checked.passed
    assert checked.failed_stages == ["parse"]
    assert checked.problems().startswith("- parse: line 5")


async def test_a_truncated_reply_never_passes_even_when_it_loads() -> None:
    checked = await check_playbook(GOOD, truncated=True)
    parse = checked.evidence[0]
    assert parse.status == "failed"
    assert parse.detail.startswith("truncated")
    assert parse.data == {"truncated": True}
    assert [e.status for e in checked.evidence[1:]] == ["skipped"] * 4
    assert not checked.passed


async def test_a_playbook_is_a_list_of_plays_with_hosts() -> None:
    not_a_list, _ = await parse_playbook("name: x\nhosts: all\n")
    assert not_a_list.status == "failed"
    assert "list of plays" in not_a_list.detail
    no_hosts, _ = await parse_playbook("- name: No hosts\n  tasks: []\n")
    assert no_hosts.status == "failed"
    assert "play 1" in no_hosts.detail and "hosts" in no_hosts.detail
    empty, _ = await parse_playbook("")
    assert empty.status == "failed" and "empty" in empty.detail


async def test_parse_counts_plays_and_nested_tasks() -> None:
    content = """\
- name: One
  hosts: all
  pre_tasks:
    - name: Before
      ansible.builtin.ping:
  tasks:
    - name: A block
      block:
        - name: Inside
          ansible.builtin.ping:
      rescue:
        - name: Rescued
          ansible.builtin.ping:
- ansible.builtin.import_playbook: other.yml
"""
    evidence, data = await parse_playbook(content)
    assert evidence.status == "passed"
    assert evidence.data == {"plays": 2, "tasks": 3}
    assert isinstance(data, list) and len(data) == 2
