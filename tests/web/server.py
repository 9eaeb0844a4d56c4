"""A real ``windflow serve`` for the browser tests: a subprocess on a free 127.0.0.1 port, restartable."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.lab.paths import REPO

SECRET_KEY = "web-test-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz"
ADMIN_EMAIL = "admin@windflow.test"
ADMIN_PASSWORD = "admin-password-1"
WEB = REPO / "web"


def build_bundle(out: Path) -> Path:
    """The web app built from the sources as they are now, into ``out`` (a second or two).

    Each test session builds its own, so what the browser loads is never a stale or half-written
    ``web/dist``.
    """
    if not (WEB / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=WEB, check=True)  # noqa: S607
    command = ["npx", "--no-install", "vite", "build", "--outDir", str(out), "--emptyOutDir", "--logLevel", "error"]
    subprocess.run(command, cwd=WEB, check=True)  # noqa: S603
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class WindflowServer:
    """``python -m server serve`` with its own data directory and SQLite file."""

    def __init__(self, directory: Path, bundle: Path, **settings: str) -> None:
        self.directory = directory
        self.bundle = bundle
        self.port = _free_port()
        self.settings = settings
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def environment(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith("WINDFLOW_")}
        return {
            **keep,
            "WINDFLOW_ENV": "production",
            "WINDFLOW_SECRET_KEY": SECRET_KEY,
            "WINDFLOW_DATA_DIR": str(self.directory / "data"),
            "WINDFLOW_ADMIN_EMAIL": ADMIN_EMAIL,
            "WINDFLOW_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "WINDFLOW_RATE_LIMIT": "0",
            "WINDFLOW_LOGIN_IP_MAX_ATTEMPTS": "10000",
            "WINDFLOW_WEB_DIR": str(self.bundle),
            **{f"WINDFLOW_{k.upper()}": v for k, v in self.settings.items()},
        }

    def start(self) -> None:
        log = (self.directory / "server.log").open("ab")
        command = [sys.executable, "-m", "server", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen(command, env=self.environment(), stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"windflow serve exited with {self.process.returncode}; see {self.directory}/server.log"
                )
            try:
                with urllib.request.urlopen(f"{self.url}/api/v1/health", timeout=1) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("windflow serve did not answer within 60 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()
