"""The web app at `/`: the bundle's files, history-mode fallback, caching, CSP, and the API left alone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from server.app import create_app

INDEX = '<!doctype html><html><head><script type="module" src="/assets/index-abc123.js"></script></head></html>'


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text(INDEX)
    (dist / "assets" / "index-abc123.js").write_text("console.log('windflow')")
    (dist / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("outside the bundle")
    return dist


@pytest.fixture
async def web(bundle: Path, clean_database: None, make_settings: Any) -> AsyncIterator[AsyncTestClient[Any]]:
    async with AsyncTestClient(create_app(make_settings(web_dir=str(bundle)))) as client:
        yield client


async def test_pages_are_the_app_and_never_cached(web: AsyncTestClient[Any]) -> None:
    for path in ("/", "/runs/0b6c7f0e-1111-2222-3333-444455556666", "/login?next=/runs"):
        response = await web.get(path)
        assert response.status_code == 200, path
        assert response.text == INDEX and response.headers["content-type"].startswith("text/html")
        assert response.headers["cache-control"] == "no-cache"
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "script-src" not in csp  # scripts: same origin, never inline


async def test_hashed_assets_are_cached_for_good_and_stay_inside_the_bundle(web: AsyncTestClient[Any]) -> None:
    response = await web.get("/assets/index-abc123.js")
    assert response.status_code == 200 and response.text == "console.log('windflow')"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "javascript" in response.headers["content-type"]
    assert (await web.get("/assets/missing.js")).status_code == 404
    assert (await web.get("/assets/..%2F..%2Fsecret.txt")).status_code == 404
    assert (await web.get("/favicon.svg")).text == "<svg/>"


async def test_the_api_keeps_its_own_answers(web: AsyncTestClient[Any]) -> None:
    assert (await web.get("/api/v1/health")).json()["status"] == "ok"
    missing = await web.get("/api/v1/no-such-thing")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("application/problem+json")
    assert (await web.post("/not-a-route", json={})).status_code == 404
    assert (await web.get("/metrics")).headers["content-type"].startswith("text/plain")


async def test_without_a_bundle_the_page_says_how_to_build_it(
    clean_database: None, make_settings: Any, tmp_path: Path
) -> None:
    async with AsyncTestClient(create_app(make_settings(web_dir=str(tmp_path / "nothing")))) as client:
        response = await client.get("/")
    assert response.status_code == 503 and "make install" in response.text
