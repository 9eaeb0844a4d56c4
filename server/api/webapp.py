"""The web app at ``/``: the built bundle (``web/dist``), with history-mode fallback.

Hashed files under ``/assets/`` are cached for a year as immutable; ``index.html`` is never cached,
so a new release is picked up at the next load. Every path that is no API route and no file gets
``index.html`` (the app's router knows it), except under ``/api/``, which keeps its JSON 404s. The
pages get the app's Content-Security-Policy (``request_context.py``): no inline scripts.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from litestar import Request, Response, get, route
from litestar.datastructures import State
from litestar.enums import HttpMethod
from litestar.params import FromPath
from litestar.response import File

from server.api.security import PUBLIC
from server.errors import NotFound
from server.playbooks.paths import repository_dir

IMMUTABLE = "public, max-age=31536000, immutable"
METHODS = (HttpMethod.GET, HttpMethod.HEAD, HttpMethod.POST, HttpMethod.PUT, HttpMethod.PATCH, HttpMethod.DELETE)
NOT_BUILT = (
    "The WindFlow web app is not built here. `make install` (or `make run`) builds it into web/dist; "
    "the API is at /api/v1 and its documentation at /api/docs.\n"
)


def bundle_dir(configured: str) -> Path | None:
    """``WINDFLOW_WEB_DIR``, else the repository's ``web/dist``, when it holds an ``index.html``."""
    directory = Path(configured) if configured else (repository_dir("web") or Path("web")) / "dist"
    return directory if (directory / "index.html").is_file() else None


def _inside(root: Path, relative: str) -> Path | None:
    """The file at ``relative`` under ``root``, never outside it."""
    candidate = (root / relative).resolve()
    if root.resolve() not in candidate.parents or not candidate.is_file():
        return None
    return candidate


def _index(root: Path | None) -> Response[bytes]:
    if root is None:
        return Response(NOT_BUILT.encode(), status_code=503, media_type="text/plain")
    body = (root / "index.html").read_bytes()
    return Response(body, media_type="text/html", headers={"Cache-Control": "no-cache"})


@get("/assets/{name:path}", opt=PUBLIC, include_in_schema=False)
async def asset(name: FromPath[str], state: State) -> File:
    root = state.web_dir
    found = _inside(root / "assets", name.lstrip("/")) if root is not None else None
    if found is None:
        raise NotFound("no such asset")
    media_type = mimetypes.guess_type(found.name)[0] or "application/octet-stream"
    return File(found, media_type=media_type, headers={"Cache-Control": IMMUTABLE}, content_disposition_type="inline")


@route(["/", "/{path:path}"], http_method=list(METHODS), status_code=200, opt=PUBLIC, include_in_schema=False)
async def page(request: Request[object, object, State], state: State) -> Response[bytes] | File:
    """Pages for GET; any other method on a path no route has is a 404, as before the app was served."""
    path = request.url.path.lstrip("/")
    if request.method not in ("GET", "HEAD") or path == "api" or path.startswith("api/"):
        raise NotFound("no such route" if request.method not in ("GET", "HEAD") else "no such API route")
    root = state.web_dir
    if root is not None and path and (found := _inside(root, path)) is not None:
        return File(found, headers={"Cache-Control": "no-cache"}, content_disposition_type="inline")
    return _index(root)
