"""`python -m bot [run|migrate]`: apply migrations, then long-poll until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from bot.config import Settings, SettingsError, load_settings
from bot.logs import setup_logging
from bot.storage import db


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot", description=__doc__)
    parser.add_argument("command", nargs="?", default="run", choices=["run", "migrate"])
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, secrets=_secrets(settings))
    db.upgrade(settings.database_url)
    if args.command == "migrate":
        return 0
    return run(settings)


def run(settings: Settings) -> int:
    asyncio.run(_run(settings))
    logging.getLogger(__name__).info("stopped")
    return 0


async def _run(settings: Settings) -> None:
    from bot.app import build_application, serve

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await serve(build_application(settings), stop)


def _secrets(settings: Settings) -> list[str]:
    return [s for s in (settings.token, settings.image_api_key.get_secret_value()) if s]


if __name__ == "__main__":
    sys.exit(main())
