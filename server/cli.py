"""The ``windflow`` command (also ``python -m server``)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from server.settings import Settings, SettingsError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="windflow", description="WindFlow automation server")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")

    serve = verbs.add_parser("serve", help="run the HTTP server (uvicorn)")
    serve.add_argument("--host", help="bind address (default: WINDFLOW_HOST)")
    serve.add_argument("--port", type=int, help="port (default: WINDFLOW_PORT)")

    verbs.add_parser("migrate", help="apply pending database migrations and exit")
    verbs.add_parser("worker", help="run a worker that executes queued runs (needs WINDFLOW_REDIS_URL)")

    users = verbs.add_parser("users", help="manage user accounts").add_subparsers(
        dest="users_verb", required=True, metavar="ACTION"
    )
    create = users.add_parser("create", help="create a user (the first admin, typically)")
    create.add_argument("--email", required=True)
    create.add_argument("--password", help="the password; omit to be prompted (or pipe it on stdin)")
    create.add_argument("--admin", action="store_true", help="make a superadmin and admin of the organization")
    create.add_argument(
        "--role",
        choices=("admin", "operator", "viewer"),
        default="viewer",
        help="role in the organization when not --admin (default: viewer)",
    )
    create.add_argument("--organization", default="Default", help="organization name (created when missing)")

    secrets = verbs.add_parser("secrets", help="the encryption of stored credentials").add_subparsers(
        dest="secrets_verb", required=True, metavar="ACTION"
    )
    rotate = secrets.add_parser("rotate", help="re-encrypt every credential under WINDFLOW_SECRET_KEY")
    rotate.add_argument(
        "--old-key-file", type=Path, help="file holding the previous secret key (default: $WINDFLOW_OLD_SECRET_KEY)"
    )
    secrets.add_parser("status", help="count the credentials under the current key and under others")
    verbs.add_parser("openapi", help="print the API's OpenAPI document (JSON) and exit; nothing is started")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.verb == "openapi":
        return _openapi()
    try:
        settings = Settings.from_env()
        if args.verb == "serve":
            return _serve(settings, args.host, args.port)
        if args.verb == "worker":
            return _worker(settings)
        if args.verb == "migrate":
            return asyncio.run(_migrate(settings))
        if args.verb == "secrets":
            return asyncio.run(_secrets(settings, args))
        return asyncio.run(_create_user(settings, args))
    except SettingsError as exc:
        print(f"windflow: configuration error: {exc}", file=sys.stderr)
        return 2


def _openapi() -> int:
    """The document the web app's API types are generated from; it does not depend on settings."""
    import json
    import secrets

    from server.app import create_app

    app = create_app(Settings(secret_key=secrets.token_urlsafe(48)))
    sys.stdout.write(json.dumps(app.openapi_schema.to_schema(), indent=2, sort_keys=True) + "\n")
    return 0


def _worker(settings: Settings) -> int:
    from server.observability import configure_logging
    from server.worker import build_worker

    configure_logging(settings.log_level)
    build_worker(settings).run()
    return 0


def _serve(settings: Settings, host: str | None, port: int | None) -> int:
    import uvicorn

    from server.app import create_app
    from server.observability import configure_logging

    configure_logging(settings.log_level)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=host or settings.host,
        port=port or settings.port,
        log_config=None,
        access_log=False,
        server_header=False,
    )
    return 0


async def _migrate(settings: Settings) -> int:
    from server.db.engine import close_engine, open_engine
    from server.db.migrations import migrate

    engine = await open_engine(settings)
    try:
        applied = await migrate(engine)
    finally:
        await close_engine(engine)
    print("applied: " + ", ".join(applied) if applied else "the database is up to date")
    return 0


async def _create_user(settings: Settings, args: argparse.Namespace) -> int:
    from server.accounts.bootstrap import create_account
    from server.auth.principal import Role
    from server.db.engine import close_engine, open_engine
    from server.db.migrations import migrate
    from server.errors import WindFlowError

    password = args.password
    if password is None:
        password = getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    engine = await open_engine(settings)
    try:
        await migrate(engine)
        role = Role.admin if args.admin else Role.parse(args.role)
        user_id = await create_account(
            args.email, password, superadmin=args.admin, organization=args.organization, role=role
        )
    except WindFlowError as exc:
        print(f"windflow: {exc.detail}", file=sys.stderr)
        return 1
    finally:
        await close_engine(engine)
    print(f"created user {args.email.strip().lower()} ({user_id}) as {role.name} of {args.organization}")
    return 0


def _old_key(args: argparse.Namespace) -> str:
    old_key = os.environ.get("WINDFLOW_OLD_SECRET_KEY", "")
    if args.old_key_file is not None:
        try:
            old_key = str(args.old_key_file.read_text()).strip()
        except OSError as exc:
            raise SettingsError(f"cannot read --old-key-file: {exc.strerror}") from None
    if not old_key:
        raise SettingsError("give the previous key with --old-key-file PATH or WINDFLOW_OLD_SECRET_KEY")
    return old_key


async def _secrets(settings: Settings, args: argparse.Namespace) -> int:
    from server.app import check_secret_key
    from server.credentials import crypto, rotation
    from server.db.engine import close_engine, open_engine

    new_key = check_secret_key(settings).secret_key
    old_key = _old_key(args) if args.secrets_verb == "rotate" else ""
    engine = await open_engine(settings)
    try:
        if args.secrets_verb == "status":
            counts = await rotation.key_status()
            current = crypto.key_id(new_key)
            others = sum(n for kid, n in counts.items() if kid != current)
            print(f"{counts[current]} credentials under the current key ({current}); {others} under other keys")
            return 0
        result = await rotation.rotate(new_key, old_key)
    finally:
        await close_engine(engine)
    if result.unreadable:
        ids = ", ".join(str(i) for i in result.unreadable)
        print(f"windflow: nothing changed; neither key decrypts credentials {ids}", file=sys.stderr)
        return 1
    print(f"rotated {result.rotated} credentials; {result.current} already under the current key")
    return 0
