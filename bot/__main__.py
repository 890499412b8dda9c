"""`python -m bot [run|migrate|migrate-db|check]`.

run (default): apply migrations, then long-poll until SIGTERM/SIGINT.
migrate: apply migrations and exit.
migrate-db --to URL: copy every row of the configured database (DATABASE_URL, by default the
  SQLite file under DATA_DIR) into the empty database at URL, e.g. a PostgreSQL one; stop the
  bot first. Then set DATABASE_URL to URL.
check: call each configured image endpoint once with a tiny prompt and print a table
  (--dry-run: only list the models each one serves). With --base-url (and the key from
  --key or IMAGE_API_KEY) no other setting is needed: it finds the dialect and auth style
  that work and prints the lines for .env.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys

from bot import redaction
from bot.config import Settings, SettingsError, load_settings
from bot.logs import setup_logging
from bot.providers.factory import database_url_password, endpoints_from_settings, secrets_of
from bot.providers.registry import ProvidersFileError
from bot.storage import db


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    parser.add_argument(
        "command", nargs="?", default="run", choices=["run", "migrate", "migrate-db", "check"]
    )
    parser.add_argument("--to", metavar="URL", help="migrate-db: the database to copy into")
    parser.add_argument("--base-url", help="check: find out how to talk to this endpoint")
    parser.add_argument("--key", help="check --base-url: the key (default: $IMAGE_API_KEY)")
    parser.add_argument("--model", help="check --base-url: the model to try")
    parser.add_argument("--dry-run", action="store_true", help="check: only list the models")
    args = parser.parse_args(argv)
    if args.command == "check" and args.base_url:
        return _discover(args)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        endpoints = endpoints_from_settings(settings)
    except (ProvidersFileError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    setup_logging(
        settings.log_level, secrets=secrets_of(settings, endpoints), fmt=settings.log_format
    )
    if args.command == "check":
        from bot.check import main as check_main

        return check_main(settings, dry_run=args.dry_run)
    if args.command == "migrate-db":
        return _migrate_db(settings, args.to)
    db.upgrade(settings.database_url)
    if args.command == "migrate":
        return 0
    return run(settings)


def _migrate_db(settings: Settings, target: str | None) -> int:
    from bot.storage.transfer import TransferError, copy_database

    if not target:
        print("error: migrate-db needs --to URL (e.g. postgresql+asyncpg://…)", file=sys.stderr)
        return 2
    try:
        copied = asyncio.run(copy_database(settings.database_url, target, progress=print))
    except TransferError as exc:
        secret = [database_url_password(target)]
        print(f"error: {redaction.redact(str(exc), secret)}", file=sys.stderr)
        return 1
    total = sum(c.rows for c in copied)
    print(f"copied {total} rows in {len(copied)} tables; the row counts match.")
    print("Now set DATABASE_URL to the new database and start the bot.")
    return 0


def _discover(args: argparse.Namespace) -> int:
    """`check --base-url`: needs no settings, so a newcomer can run it before writing .env."""
    from bot.check import discover_main

    key = args.key or os.environ.get("IMAGE_API_KEY", "")
    setup_logging("WARNING", secrets=[key])
    return discover_main(args.base_url, key, model=args.model, dry_run=args.dry_run)


def run(settings: Settings) -> int:
    from telegram.error import InvalidToken, NetworkError

    from bot.ops import ListenError

    try:
        asyncio.run(_run(settings))
    except ListenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except InvalidToken:
        print(
            "error: Telegram refused TELEGRAM_BOT_TOKEN (check it with @BotFather)", file=sys.stderr
        )
        return 2
    except NetworkError as exc:
        print(
            f"error: cannot reach the Bot API at {settings.telegram_api_url}: {type(exc).__name__}",
            file=sys.stderr,
        )
        return 1
    logging.getLogger(__name__).info("stopped")
    return 0


async def _run(settings: Settings) -> None:
    from bot.app import build_application, serve

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve(build_application(settings), stop, on_started=freeze_startup_objects)


def freeze_startup_objects() -> None:
    """Keep what start-up made (modules, PTB, SQLAlchemy, Pillow: ~10^5 objects that live as
    long as the process) out of the garbage collector's full passes. Each full pass walked them
    all and held the event loop for a noticeable time with hundreds of chats at once; now it
    walks only what was made since. Only here, once per process: tests that start many bots
    must not freeze theirs.
    """
    gc.collect()
    gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
