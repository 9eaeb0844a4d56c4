"""The words WindFlow says to the model: its role, the context, repair requests and the jobs' briefs."""

from __future__ import annotations

import json
from typing import Any

SYSTEM = """You are WindFlow's assistant, an expert in Ansible, Docker, Kubernetes and Linux operations.
WindFlow is an automation server: people keep inventories, playbooks, runs and stacks in it.

How to answer:
- Be concise and concrete. Explain in plain words when asked to explain.
- When you propose a playbook, give the whole playbook in ONE fenced block (```yaml ... ```): a list of
  plays with `name`, `hosts` and tasks. Use fully qualified module names (ansible.builtin.copy,
  community.docker.docker_container, kubernetes.core.k8s), name every task, prefer modules over
  command/shell, make tasks idempotent (a second run changes nothing), and never put secrets in the
  playbook: use variables (from credentials or vault) and `no_log: true` on tasks that handle them.
- When you propose a stack, give a WindFlow stack definition (`metadata`, `template`, `variables`) or a
  docker-compose document in one fenced ```yaml block.
- Every playbook you propose is checked for real (YAML, installed modules and their arguments,
  ansible-playbook --syntax-check, ansible-lint's production profile, a safety review, and check
  mode on the user's inventory when asked). If a check fails you will be told, and asked to repair.
- You cannot run anything yourself: you propose, a person applies.
- Secret values were removed from what you see and show as [REDACTED…]; never ask for them."""

TOOLS_NOTE = """You can look at WindFlow's data with the tools (inventories, playbooks, runs, stacks and the
installed Ansible modules). Use them instead of guessing ids, host names or module arguments."""

NO_TOOLS_NOTE = """You have no tools: what you need to know about the user's objects is in the context below."""


def system_prompt(tools: bool, context_text: str = "", context: dict[str, Any] | None = None) -> str:
    parts = [SYSTEM, TOOLS_NOTE if tools else NO_TOOLS_NOTE]
    if context and tools:
        named = ", ".join(f"{key} {value}" for key, value in context.items() if key.endswith("_id"))
        if named:
            parts.append(f"The user is looking at: {named}.")
    if context and context.get("target"):
        parts.append(f"Target kind for stacks: {context['target']}.")
    if context_text:
        parts.append("Context:\n" + context_text)
    return "\n\n".join(parts)


def repair_request(kind: str, content: str, problems: str, truncated: bool) -> str:
    what = "stack definition" if kind == "stack" else "playbook"
    if truncated:
        lead = (
            f"Your previous answer was cut off before the {what} ended (the token limit). "
            f"Answer again with a shorter, complete {what}."
        )
    else:
        lead = f"The {what} you proposed failed WindFlow's checks:\n{problems}"
    return (
        f"{lead}\n\nHere is the {what} as it was checked:\n```yaml\n{content}\n```\n\n"
        f"Reply with the corrected, complete {what} in one ```yaml block and one sentence on what you changed."
    )


def explain_run(bundle: dict[str, Any]) -> str:
    return (
        "Explain why this WindFlow run failed, in plain words, host by host where they differ. Then, where you "
        "can, propose the fixed playbook (the whole playbook, in one ```yaml block). Say when a relaunch of the "
        "failed hosts alone is likely to succeed (for example a transient network error).\n\n"
        "The run, and its failed and unreachable events:\n```json\n"
        + json.dumps(bundle, indent=1, default=str)
        + "\n```"
    )


def explain_playbook(name: str, content: str) -> str:
    return (
        f"Explain the playbook {name!r} in plain words for someone who does not read YAML: what it changes, on "
        "which hosts, in what order, what could go wrong, and whether running it twice is safe. Do not propose "
        f"a new playbook unless asked.\n\n```yaml\n{content}\n```"
    )


def optimise_playbook(name: str, content: str, slowest: list[dict[str, Any]]) -> str:
    timing = (
        "Measured per-task durations from its recent runs, slowest first:\n"
        + "\n".join(f"- {t['task']}: {t['mean_s']} s on average over {t['samples']} host run(s)" for t in slowest)
        if slowest
        else "No recent run of it has per-task timings yet."
    )
    return (
        f"Make the playbook {name!r} faster without changing what it ends up doing. Focus on the slow tasks. "
        "Typical gains: one package task with a list instead of a loop, `gather_facts: false` or a fact subset "
        "when facts are unused, modules instead of command/shell, `changed_when`/`creates` so reruns are cheap, "
        "free strategy or async where it is safe, fewer round trips. First list your reasons (one line each, "
        "most impact first), then the whole optimised playbook in one ```yaml block.\n\n"
        f"{timing}\n\n```yaml\n{content}\n```"
    )


def title_of(content: str) -> str:
    line = " ".join(content.split())
    return line if len(line) <= 80 else line[:79] + "…"
