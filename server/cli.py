"""The ``windflow`` command (also ``python -m server``)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Sequence

from server.settings import Settings, SettingsError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="windflow", description="WindFlow automation server")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")

    serve = verbs.add_parser("serve", help="run the HTTP server (uvicorn)")
    serve.add_argument("--host", help="bind address (default: WINDFLOW_HOST)")
    serve.add_argument("--port", type=int, help="port (default: WINDFLOW_PORT)")

    verbs.add_parser("migrate", help="apply pending database migrations and exit")

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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        if args.verb == "serve":
            return _serve(settings, args.host, args.port)
        if args.verb == "migrate":
            return asyncio.run(_migrate(settings))
        return asyncio.run(_create_user(settings, args))
    except SettingsError as exc:
        print(f"windflow: configuration error: {exc}", file=sys.stderr)
        return 2


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
