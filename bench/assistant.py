"""What WindFlow adds to a model's answer, and what its evidence costs.

Run from the repository: ``.venv/bin/python bench/assistant.py [SAMPLES]``. One run measures:

1. Time to first token and total time of a streamed answer (60 words, the scripted OpenAI-protocol
   server of the test suite answering after 50 ms), asked straight of that server with an SSE
   client, then through WindFlow (``POST …/messages`` with ``Accept: text/event-stream`` on the
   app under uvicorn, embedded, on SQLite, and on PostgreSQL too when ``WINDFLOW_BENCH_DATABASE_URL``
   names a server): the difference is what WindFlow adds (goal ≤ 20 ms on the first token). Each
   sample is a new conversation, alternating direct and through WindFlow.
2. Each evidence stage for a 20-task playbook (parse, modules, syntax, lint, safety): the first
   check (cold), then the median of warm ones, and the wall time of all stages together (goal:
   parse to safety ≤ 3 s warm).

Nothing asserts on time: it prints figures and exits 0.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    bench_settings,
    created,
    database_kinds,
    machine,
    percentile,
    scratch_database,
    served,
    table,
)
from tests.assistant.scripted_llm import Reply, ScriptedLLM  # noqa: E402

WORDS = " ".join(f"word{i}" for i in range(60))
FIRST_TOKEN_DELAY = 0.05
WARM = 5


TASKS = (  # four kinds of task, five of each: {n} is the task's number
    """    - name: Make directory {n}
      ansible.builtin.file:
        path: /tmp/windflow-bench/{n}
        state: directory
        mode: "0755"
""",
    """    - name: Write file {n}
      ansible.builtin.copy:
        dest: /tmp/windflow-bench/{n}.txt
        content: "{n}\\n"
        mode: "0644"
""",
    """    - name: Say {n}
      ansible.builtin.debug:
        msg: "step {n}"
""",
    """    - name: Line {n}
      ansible.builtin.lineinfile:
        path: /tmp/windflow-bench/conf
        line: "key{n}=value"
        create: true
        mode: "0644"
""",
)


def twenty_tasks() -> str:
    tasks = "".join(TASKS[n % 4].format(n=n) for n in range(1, 21))
    return "- name: Twenty tasks\n  hosts: all\n  gather_facts: false\n  tasks:\n" + tasks


async def direct(http: Any, llm: ScriptedLLM) -> tuple[float, float]:
    body = {"model": "scripted", "stream": True, "messages": [{"role": "user", "content": "count"}], "max_tokens": 256}
    started = time.perf_counter()
    first = 0.0
    async with http.stream("POST", f"{llm.api_base}/chat/completions", json=body) as response:
        async for line in response.aiter_lines():
            if not first and line.startswith("data:") and '"content": "word' in line:
                first = time.perf_counter()
    return first - started, time.perf_counter() - started


async def through_windflow(http: Any) -> tuple[float, float]:
    conversation = await created(http, "/api/v1/assistant/conversations", {})
    path = f"/api/v1/assistant/conversations/{conversation['id']}/messages"
    headers = {"accept": "text/event-stream"}
    started = time.perf_counter()
    first = 0.0
    async with http.stream("POST", path, json={"content": "count"}, headers=headers) as response:
        async for line in response.aiter_lines():
            if not first and line.startswith("data:") and json.loads(line[5:])["type"] == "delta":
                first = time.perf_counter()
    return first - started, time.perf_counter() - started


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


async def first_tokens(samples: int, directory: Path, database_url: str, kind: str) -> None:
    import httpx

    llm = ScriptedLLM().start()
    llm.responder = lambda body: Reply(text=WORDS, first_token_delay=FIRST_TOKEN_DELAY, usage=(20, 60))
    try:
        settings = bench_settings(
            directory,
            database_url,
            llm_model="openai/scripted",
            llm_api_base=llm.api_base,
            llm_api_key="sk-bench-key-0123456789",
        )
        async with served(settings) as app, httpx.AsyncClient(timeout=60) as plain:
            for _ in range(3):  # warm-up: litellm's import, connection pools, first queries
                await through_windflow(app.http)
                await direct(plain, llm)
            straight, windflow = [], []
            for _ in range(samples):
                straight.append(await direct(plain, llm))
                windflow.append(await through_windflow(app.http))
    finally:
        llm.stop()
    rows = []
    for name, values in (("straight to the server", straight), (f"through WindFlow ({kind})", windflow)):
        firsts = [v[0] for v in values]
        totals = [v[1] for v in values]
        rows.append(
            [
                name,
                ms(statistics.median(firsts)),
                ms(percentile(firsts, 95)),
                ms(statistics.median(totals)),
                len(values),
            ]
        )
    added_first = statistics.median(v[0] for v in windflow) - statistics.median(v[0] for v in straight)
    added_total = statistics.median(v[1] for v in windflow) - statistics.median(v[1] for v in straight)
    print(table(["path", "first token p50 ms", "first token p95 ms", "total p50 ms", "samples"], rows))
    print(f"added by WindFlow: first token {ms(added_first)} ms (goal <= 20 ms), total {ms(added_total)} ms\n")


async def stages() -> None:
    from server.assistant.checks import check_playbook

    content = twenty_tasks()
    with tempfile.TemporaryDirectory(prefix="windflow-bench-") as tmp:
        cache = Path(tmp)
        runs = []
        for _ in range(1 + WARM):
            started = time.perf_counter()
            checked = await check_playbook(content, cache_dir=cache)
            runs.append((time.perf_counter() - started, checked))
    cold_wall, cold = runs[0]
    if not cold.passed:
        print("the bench playbook did not pass:", cold.problems())
    warm = runs[1:]
    rows = []
    for index, item in enumerate(cold.evidence):
        warm_ms = statistics.median(run.evidence[index].duration_ms for _, run in warm)
        rows.append([item.stage, item.status, item.duration_ms, f"{warm_ms:.0f}"])
    walls = [wall for wall, _ in warm]
    rows.append(["all stages (wall)", "", f"{cold_wall * 1000:.0f}", f"{statistics.median(walls) * 1000:.0f}"])
    print(table(["stage (20-task playbook)", "status", "cold ms", f"warm ms (median of {WARM})"], rows))
    print(f"parse to safety, warm: {statistics.median(walls):.2f} s (goal <= 3 s)\n")


def main() -> None:
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    print(machine())
    for kind in database_kinds():
        with tempfile.TemporaryDirectory(prefix="windflow-bench-") as tmp, scratch_database(Path(tmp), kind) as url:
            asyncio.run(first_tokens(samples, Path(tmp), url, kind))
    asyncio.run(stages())
    print(machine())


if __name__ == "__main__":
    main()
