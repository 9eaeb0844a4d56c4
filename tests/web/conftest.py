"""Browser tests: Debian's Chromium driven by Playwright against a real ``windflow serve``.

One server per test module (its own SQLite file and data directory) and one browser per session.
Each test gets a fresh browser context at 1280x800 whose requests may only go to 127.0.0.1; errors
in the browser console fail the test, and every page a test visits can be kept as a screenshot in
``.artifacts/web/``.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.lab.install import ensure_packages
from tests.lab.paths import REPO
from tests.web.server import ADMIN_EMAIL, ADMIN_PASSWORD, WindflowServer, build_bundle

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / ".artifacts" / "web"
ONLY_LOCAL = re.compile(r"^(?!https?://127\.0\.0\.1[:/]|wss?://127\.0\.0\.1[:/]|data:|blob:|about:)")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    ensure_packages("browser")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_bundle(tmp_path_factory.mktemp("web") / "dist")


@pytest.fixture(scope="module")
def windflow(tmp_path_factory: pytest.TempPathFactory, bundle: Path) -> Iterator[WindflowServer]:
    server = WindflowServer(tmp_path_factory.mktemp("windflow"), bundle)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Screens:
    """Screenshots of a test's pages, named after the test."""

    def __init__(self, page: Any, name: str) -> None:
        self.page = page
        self.name = re.sub(r"[^\w.-]+", "_", name)

    def take(self, what: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.name}--{what}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


def api_login(server: WindflowServer, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> dict[str, str]:
    body = json.dumps({"email": email, "password": password}).encode()
    request = urllib.request.Request(  # noqa: S310 - 127.0.0.1 only
        f"{server.url}/api/v1/auth/login", data=body, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return dict(json.loads(response.read()))


def api(server: WindflowServer, method: str, path: str, token: str, body: Any = None) -> Any:
    """A direct API call, to set the scene a test then looks at in the browser."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": f"Bearer {token}", "content-type": "application/json"}
    request = urllib.request.Request(f"{server.url}{path}", data=data, method=method, headers=headers)  # noqa: S310
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        text = response.read()
    return json.loads(text) if text else None


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    ctx.route(ONLY_LOCAL, lambda route: route.abort())
    try:
        yield ctx
    finally:
        ctx.close()


HTTP_ERROR = re.compile(r"^Failed to load resource: the server responded with a status of \d{3}")


def _response_problem(response: Any) -> str | None:
    """An API's 4xx is an answer the app shows (a wrong password); a missing file or any 5xx is a defect."""
    if response.status < 400:
        return None
    if response.status < 500 and "/api/" in response.url:
        return None
    return f"{response.status} {response.url}"


@pytest.fixture
def page(context: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A page whose console stays free of errors for the whole test, and that loads no missing file."""
    tab = context.new_page()
    errors: list[str] = []

    def console(message: Any) -> None:
        if message.type == "error" and not HTTP_ERROR.match(message.text):  # HTTP statuses: judged below
            errors.append(message.text)

    def response(answer: Any) -> None:
        if problem := _response_problem(answer):
            errors.append(problem)

    tab.on("console", console)
    tab.on("pageerror", lambda error: errors.append(str(error)))
    tab.on("response", response)
    tab.set_default_timeout(15_000)
    yield tab
    assert errors == [], f"errors in the browser: {errors}"


@pytest.fixture
def screens(page: Any, request: pytest.FixtureRequest) -> Screens:
    return Screens(page, request.node.name)


def signed_in(
    page: Any, server: WindflowServer, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD
) -> dict[str, str]:
    """Open the app already signed in (tokens placed as the sign-in page leaves them); returns them."""
    tokens = api_login(server, email, password)
    session = json.dumps({"access_token": tokens["access_token"], "refresh_token": tokens["refresh_token"]})
    page.context.add_init_script(f"window.localStorage.setItem('windflow.session', {json.dumps(session)})")
    return tokens
