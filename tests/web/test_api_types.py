"""The web app's API types are generated from the running server's schema, never written by hand.

`make web-types` regenerates both files; this fails when either is out of date.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.lab.paths import REPO

WEB = REPO / "web"


def test_the_committed_openapi_document_is_the_servers() -> None:
    served = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "server", "openapi"], capture_output=True, text=True, check=True, cwd=REPO
    ).stdout
    assert served == (WEB / "openapi.json").read_text(), "the API changed: run `make web-types`"


def test_the_types_are_generated_from_that_document(tmp_path: Path) -> None:
    generated = tmp_path / "schema.d.ts"
    command = ["npx", "--no-install", "openapi-typescript", "openapi.json", "-o", str(generated)]
    subprocess.run(command, cwd=WEB, check=True, capture_output=True)  # noqa: S603
    assert generated.read_text() == (WEB / "src" / "api" / "schema.d.ts").read_text(), "run `make web-types`"
