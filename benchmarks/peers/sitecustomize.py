"""Loaded by a peer's Python at start-up (benchmarks/peers.py puts this folder on its PYTHONPATH).

It points the peer's Bot API library at the fake Telegram named in BENCH_TELEGRAM_API_URL and
changes nothing else: pyTelegramBotAPI has no setting for its address, only a module attribute;
python-telegram-bot's Bot gets a default address, because a peer may build a second Bot without
passing on its own base-URL setting (chibi does, to call getMe at start-up).
"""

import os

_ROOT = os.environ.get("BENCH_TELEGRAM_API_URL")
_OFFICIAL = {
    "https://api.telegram.org/bot": "/bot",
    "https://api.telegram.org/file/bot": "/file/bot",
}


def _point_telebot(root: str) -> None:
    try:
        from telebot import asyncio_helper
    except ImportError:
        return
    asyncio_helper.API_URL = root + "/bot{0}/{1}"
    asyncio_helper.FILE_URL = root + "/file/bot{0}/{1}"


def _point_ptb(root: str) -> None:
    try:
        from telegram import Bot
        from telegram.ext import ExtBot
    except ImportError:
        return
    for cls in (Bot, ExtBot):
        init = cls.__init__
        if init.__defaults__:
            init.__defaults__ = tuple(
                root + _OFFICIAL[d] if isinstance(d, str) and d in _OFFICIAL else d
                for d in init.__defaults__
            )


if _ROOT:
    _point_telebot(_ROOT)
    _point_ptb(_ROOT)
