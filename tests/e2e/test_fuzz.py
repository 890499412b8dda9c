"""Fuzz: random but well-formed updates of every kind through the real bot, then a normal request.

Hypothesis draws batches of updates (every message kind, odd Unicode, entities, replies, edits,
channel posts, member changes, inline queries, button presses with random data) from two users
in their private chats, a group and a forum supergroup. The bot runs once for the whole test
(`bot.app.serve` against the fake Telegram, as the other e2e tests); Hypothesis runs in a worker
thread and hands each batch to the bot's event loop, then waits until the Application has
handled every update of it. No batch may make an exception reach PTB's error handler or any log
as an ERROR or a traceback, and afterwards a text in a fresh private chat still gives a photo.

Cases that find bugs in code other areas own can be switched off here (and on again with the
environment variable FUZZ_CASES, e.g. FUZZ_CASES=+stale_callbacks); FUZZ_EXAMPLES raises the
number of batches for a longer local run.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import dataclasses
import io
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import png
from tests.e2e.test_updates import RECORDED_MY_CHAT_MEMBER
from tests.fakes.telegram_api import FakeTelegram


@dataclass(frozen=True)
class Cases:
    """Which kinds of input the fuzz draws. All on, except those listed in the report as bugs
    of another area that this branch does not fix."""

    texts: bool = True
    long_texts: bool = True
    entities: bool = True
    commands: bool = True
    media: bool = True
    service: bool = True
    replies: bool = True
    edits: bool = True
    channel_posts: bool = True
    members: bool = True
    inline_queries: bool = True
    chatless: bool = True  # polls, poll answers, reaction counts
    # ChatMembers as Bot API 5.x sent them, which PTB 22 cannot read: each must be skipped
    # (logged once) without holding up the updates around it
    old_api_members: bool = True
    random_callbacks: bool = True  # callback data of 1-64 random bytes, as a string
    # the bot's own prefixes (orig:, regen:, set:...) + junk
    pattern_callbacks: bool = True
    # presses Telegram no longer takes an answer for (too old, made while the bot was down)
    stale_callbacks: bool = True


def _cases() -> Cases:
    cases = Cases()
    for item in filter(None, os.environ.get("FUZZ_CASES", "").split(",")):
        name = item.strip().lstrip("+-")
        cases = dataclasses.replace(cases, **{name: not item.strip().startswith("-")})
    return cases


CASES = _cases()
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))

BOT_USERNAME = "nano_test_bot"
ALICE, BOB, CAROL = 1001, 1002, 1003  # Bob is the bot's admin; Carol asks only at the end
GROUP, FORUM, CHANNEL = -4001, -1001000000001, -1001000000002
CHATS = ("alice_dm", "bob_dm", "group", "forum")
TOPICS = (None, 1, 77)  # in the forum: General, and a topic

# --------------------------------------------------------------------------------------------
# Text

ODD = (
    "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    "\ufeff\u00ad\u034f\u061c"
)  # zero-width, bidi controls, soft hyphen, combining grapheme joiner
RTL = "مرحبا بالعالم שלום עולם"
COMBINING = "".join(chr(c) for c in range(0x0300, 0x0370, 7))
EMOJI = ["🍌", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇨🇳", "❤️", "🧑🏿‍🚀", "🫠", "#️⃣"]
CJK = "画一只猫戴着帽子，水彩风格"
GRAPHEMES = st.sampled_from(
    list("abc xyz ABC 0123.,!?-_/@#:*()[]`~<>&\"'\n\t")
    + list(ODD)
    + list(RTL)
    + list(COMBINING)
    + list(CJK)
    + EMOJI
)


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def cut_utf16(text: str, limit: int) -> str:
    """The longest prefix of `text` of at most `limit` UTF-16 units (Telegram's measure)."""
    out, used = [], 0
    for ch in text:
        used += utf16_len(ch)
        if used > limit:
            break
        out.append(ch)
    return "".join(out)


def _pieces() -> st.SearchStrategy[str]:
    return st.lists(
        st.one_of(
            st.lists(GRAPHEMES, min_size=1, max_size=12).map("".join),
            st.sampled_from(["a red panda", RTL, CJK, f"@{BOT_USERNAME}", "--ar 16:9"]),
            st.sampled_from(["--ar 99:0", "--size 2K", "--size 9K", "--ar", "https://x.test/a"]),
        ),
        min_size=1,
        max_size=6,
    ).map(" ".join)


@st.composite
def texts(draw: st.DrawFn, limit: int) -> str:
    text = draw(_pieces())
    if CASES.long_texts and draw(st.integers(0, 9)) == 0:
        text = cut_utf16(text * (limit // max(1, utf16_len(text)) + 1), limit)  # right at it
    text = cut_utf16(text, limit)
    return text if text.strip() else "x" + text


COMMANDS = (
    "start", "help", "new", "ratio", "history", "undo", "settings", "usage", "imagine", "edit",
    "allow", "deny", "quota", "stats", "nosuchcommand",
)  # fmt: skip


@st.composite
def command_texts(draw: st.DrawFn) -> str:
    name = draw(st.sampled_from(COMMANDS))
    suffix = draw(st.sampled_from(["", f"@{BOT_USERNAME}", "@other_bot", "@NANO_TEST_BOT"]))
    arg = draw(
        st.one_of(
            st.just(""),
            st.sampled_from(["1001", "1002", "-4001", "0", "-1", "99999999999999999999", "me"]),
            st.sampled_from(["1001 5", "1002 -3", "user 1001 10", "chat -4001 0", "x y z"]),
            _pieces(),
        )
    )
    return cut_utf16(f"/{name}{suffix} {arg}".rstrip(), 4096)


@st.composite
def entities(draw: st.DrawFn, text: str) -> list[dict[str, Any]]:
    """Well-formed entities: within the text, on code point boundaries (UTF-16 offsets)."""
    bounds = [0]
    for ch in text:
        bounds.append(bounds[-1] + utf16_len(ch))
    out: list[dict[str, Any]] = []
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(bounds) - 2))
        j = draw(st.integers(i + 1, len(bounds) - 1))
        kind = draw(
            st.sampled_from(
                [
                    "bold", "italic", "underline", "strikethrough", "spoiler", "code", "pre",
                    "text_link", "mention", "hashtag", "url", "bot_command", "text_mention",
                    "custom_emoji", "blockquote", "email", "cashtag",
                ]
            )
        )  # fmt: skip
        entity: dict[str, Any] = {"type": kind, "offset": bounds[i]}
        entity["length"] = bounds[j] - bounds[i]
        if kind == "text_link":
            entity["url"] = "https://example.test/x"
        elif kind == "pre":
            entity["language"] = draw(st.sampled_from(["", "python", "x" * 20]))
        elif kind == "text_mention":
            entity["user"] = {"id": BOB, "is_bot": False, "first_name": "Bob"}
        elif kind == "custom_emoji":
            entity["custom_emoji_id"] = "5368324170671202286"
        out.append(entity)
    return sorted(out, key=lambda e: (e["offset"], -e["length"]))


# --------------------------------------------------------------------------------------------
# Events: what a person (or Telegram) does; turned into update JSON on the bot's loop


@dataclass
class Event:
    kind: str
    chat: str = "alice_dm"
    sender: str = "alice"  # in groups: alice or bob
    text: str = ""
    entities: list[dict[str, Any]] = field(default_factory=list)
    media: str = ""  # which media or service message
    reply_pick: int | None = None  # index into the chat's messages to reply to
    topic: int | None = None
    data: str = ""  # callback data, inline query
    number: int = 0  # a free choice (colour, status, dice value...)

    def __repr__(self) -> str:  # short enough to read in a failure report
        shown = {
            k: (f"{v[:60]!r}...({len(v)} chars)" if isinstance(v, str) and len(v) > 60 else repr(v))
            for k, v in dataclasses.asdict(self).items()
            if v not in ("", None, [], 0)
        }
        return "Event(" + ", ".join(f"{k}={v}" for k, v in shown.items()) + ")"


@st.composite
def places(draw: st.DrawFn) -> tuple[str, str, int | None]:
    chat = draw(st.sampled_from(CHATS))
    sender = {"alice_dm": "alice", "bob_dm": "bob"}.get(chat) or draw(
        st.sampled_from(["alice", "bob"])
    )
    topic = draw(st.sampled_from(TOPICS)) if chat == "forum" else None
    return chat, sender, topic


def _reply_pick(draw: st.DrawFn) -> int | None:
    if not CASES.replies:
        return None
    return draw(st.one_of(st.none(), st.integers(0, 50)))


@st.composite
def text_events(draw: st.DrawFn) -> Event:
    chat, sender, topic = draw(places())
    text = draw(command_texts()) if CASES.commands and draw(st.booleans()) else draw(texts(4096))
    ents = draw(entities(text)) if CASES.entities and draw(st.booleans()) else []
    return Event("text", chat, sender, text, ents, reply_pick=_reply_pick(draw), topic=topic)


MEDIA = (
    "photo", "photo_tiny", "photo_wide", "document_png", "document_pdf", "document_broken",
    "sticker", "voice", "video", "animation", "location", "contact", "poll", "dice",
)  # fmt: skip
SERVICE = (
    "new_chat_members", "new_chat_members_bot", "left_chat_member", "new_chat_title",
    "pinned_message", "pinned_inaccessible", "group_chat_created", "forum_topic_created",
)  # fmt: skip


@st.composite
def media_events(draw: st.DrawFn) -> Event:
    chat, sender, topic = draw(places())
    media = draw(st.sampled_from(MEDIA))
    caption = ""
    if media.startswith(("photo", "document", "video", "animation")) and draw(st.booleans()):
        caption = draw(st.one_of(command_texts(), texts(1024)))
    return Event(
        "media",
        chat,
        sender,
        caption,
        media=media,
        reply_pick=_reply_pick(draw),
        topic=topic,
        number=draw(st.integers(0, 10**6)),
    )


@st.composite
def service_events(draw: st.DrawFn) -> Event:
    chat = draw(st.sampled_from(["group", "forum"]))
    sender = draw(st.sampled_from(["alice", "bob"]))
    return Event(
        "service",
        chat,
        sender,
        draw(texts(128)),
        media=draw(st.sampled_from(SERVICE)),
        number=draw(st.integers(0, 50)),
    )


@st.composite
def edit_events(draw: st.DrawFn) -> Event:
    return Event("edit", text=draw(texts(4096)), number=draw(st.integers(0, 50)))


@st.composite
def channel_events(draw: st.DrawFn) -> Event:
    text = draw(st.one_of(texts(4096), command_texts()))
    return Event("channel", "channel", text=text, number=draw(st.integers(0, 3)))


@st.composite
def member_events(draw: st.DrawFn) -> Event:
    chat, sender, _ = draw(places())
    kind = draw(st.sampled_from(["my_chat_member", "chat_member"]))
    statuses = ["member", "administrator", "restricted", "left", "kicked"]
    if CASES.old_api_members:
        statuses += ["old_administrator", "old_restricted"]
    return Event(
        kind, chat, sender, media=draw(st.sampled_from(statuses)), number=draw(st.integers(0, 4))
    )


@st.composite
def inline_events(draw: st.DrawFn) -> Event:
    sender = draw(st.sampled_from(["alice", "bob"]))
    return Event("inline", sender=sender, data=draw(texts(256)), number=draw(st.integers(0, 4)))


@st.composite
def chatless_events(draw: st.DrawFn) -> Event:
    """Updates without a chat or without a user (a poll's state, a vote, reaction counts)."""
    chat, sender, _ = draw(places())
    media = draw(st.sampled_from(["poll", "poll_answer", "reaction_count"]))
    return Event("chatless", chat, sender, media=media, number=draw(st.integers(0, 50)))


def callback_data() -> st.SearchStrategy[str]:
    """1-64 bytes of UTF-8, as Telegram delivers a button's data (and PTB passes it on)."""
    kinds: list[st.SearchStrategy[str]] = []
    if CASES.random_callbacks:
        kinds.append(st.text(min_size=1, max_size=64))
    if CASES.pattern_callbacks:
        prefix = st.sampled_from(
            ["orig:", "regen:", "var:", "new", "ratio:", "hist:", "histp:", "set:", "set:model:"]
        )
        tail = st.one_of(
            st.integers(-(10**20), 10**20).map(str),
            st.text(min_size=0, max_size=20),
            st.sampled_from(["", "0", "1", "16:9", "x:y", "lang:zh", "model:0", "99"]),
        )
        kinds.append(st.builds(lambda p, t: p + t, prefix, tail))
    return st.one_of(kinds).map(_cut_bytes).filter(bool)


def _cut_bytes(data: str) -> str:
    raw = data.encode("utf-8", "surrogatepass")[:64]
    return raw.decode("utf-8", "ignore")


@st.composite
def callback_events(draw: st.DrawFn) -> Event:
    chat, sender, _ = draw(places())
    return Event(
        "callback",
        chat,
        sender,
        data=draw(callback_data()),
        number=draw(st.integers(0, 50)),
        media=draw(
            st.sampled_from(
                ["message", "message", "inaccessible"]
                + (["stale"] if CASES.stale_callbacks else [])
            )
        ),
    )


def events() -> st.SearchStrategy[Event]:
    weighted: list[tuple[int, bool, Callable[[], st.SearchStrategy[Event]]]] = [
        (3, CASES.texts or CASES.commands, text_events),
        (4, CASES.media, media_events),
        (1, CASES.service, service_events),
        (1, CASES.edits, edit_events),
        (1, CASES.channel_posts, channel_events),
        (1, CASES.members, member_events),
        (1, CASES.inline_queries, inline_events),
        (1, CASES.chatless, chatless_events),
        (2, CASES.random_callbacks or CASES.pattern_callbacks, callback_events),
    ]
    makers = [make for weight, on, make in weighted if on for _ in range(weight)]
    return st.sampled_from(makers).flatmap(lambda make: make())


# --------------------------------------------------------------------------------------------
# Turning events into updates


def _webp() -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", (512, 512), (255, 200, 0, 255)).save(buf, "WEBP")
    return buf.getvalue()


def _gif() -> bytes:
    frames = [Image.new("RGB", (32, 32), c) for c in ((255, 0, 0), (0, 255, 0))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buf.getvalue()


class World:
    """The two users, their chats and what was said in them, on the fake Telegram."""

    def __init__(self, tg: FakeTelegram) -> None:
        self.tg = tg
        self.users = {
            "alice": tg.user(ALICE, "Alice", "en", username="alice"),
            "bob": tg.user(BOB, "Bob ب", "zh-hans"),
        }
        self.chat_ids = {"alice_dm": ALICE, "bob_dm": BOB, "group": GROUP, "forum": FORUM}
        self.chat_types = {
            "alice_dm": "private",
            "bob_dm": "private",
            "group": "group",
            "forum": "supergroup",
        }
        self.sent: list[dict[str, Any]] = []  # user messages, for edits and pins
        self.channel_ids = iter(range(1, 10**6))
        self.query_ids = iter(range(2 * 10**18, 3 * 10**18))
        self.unreadable = 0  # updates played that PTB cannot read
        self.sticker = _webp()
        self.gif = _gif()
        tg.chats[FORUM] = {"id": FORUM, "type": "supergroup", "title": "Forum", "is_forum": True}

    def _chat(self, name: str) -> dict[str, Any]:
        chat_id = self.chat_ids[name]
        if chat_id in self.tg.chats:
            return copy.deepcopy(self.tg.chats[chat_id])
        if name == "forum":
            return {"id": FORUM, "type": "supergroup", "title": "Forum", "is_forum": True}
        if name == "group":
            return {"id": GROUP, "type": "group", "title": "Test Group"}
        user = self.users["alice" if name == "alice_dm" else "bob"]
        return {"id": chat_id, "type": "private", "first_name": user["first_name"]}

    def _messages_in(self, chat_id: int) -> list[int]:
        ours = {m["message_id"] for m in self.sent if m["chat"]["id"] == chat_id}
        bots = {mid for (cid, mid) in self.tg.messages if cid == chat_id}
        return sorted(ours | bots)

    def _reply_to(self, event: Event, chat_id: int) -> int | None:
        if event.reply_pick is None:
            return None
        ids = self._messages_in(chat_id)
        return ids[event.reply_pick % len(ids)] if ids else None

    def _file(self, data: bytes, kind: str, **extra: Any) -> dict[str, Any]:
        file_id, unique = self.tg.add_file(data, kind=kind)
        return {"file_id": file_id, "file_unique_id": unique, "file_size": len(data), **extra}

    def _media(self, event: Event) -> dict[str, Any]:
        n, m = event.number, event.media
        color = (n % 256, (n // 256) % 256, (n // 65536) % 256)
        if m.startswith("photo"):
            size = {"photo": (64, 48), "photo_tiny": (1, 1), "photo_wide": (2000, 20)}[m]
            data = png(color, size)
            return {"photo": [self._file(data, "photo", width=size[0], height=size[1])]}
        if m.startswith("document"):
            name, mime, data = {
                "document_png": ("صورة‮gnp.png", "image/png", png(color)),
                "document_pdf": ("a.pdf", "application/pdf", b"%PDF-1.4\n%%EOF"),
                "document_broken": ("x.jpg", "image/jpeg", png(color)[:40]),
            }[m]
            return {"document": self._file(data, "document", file_name=name, mime_type=mime)}
        if m == "sticker":
            sticker = self._file(
                self.sticker, "sticker", type="regular", width=512, height=512,
                is_animated=False, is_video=False, emoji="👍", set_name="Fuzz",
            )  # fmt: skip
            return {"sticker": sticker}
        if m == "voice":
            data = b"OggS\x00\x02" + bytes(200)
            return {"voice": self._file(data, "voice", duration=2, mime_type="audio/ogg")}
        if m == "video":
            data = b"\x00\x00\x00\x18ftypmp42" + bytes(300)
            video = self._file(
                data, "video", width=320, height=240, duration=3, mime_type="video/mp4"
            )
            return {"video": video}
        if m == "animation":
            anim = self._file(
                self.gif, "animation", width=32, height=32, duration=1,
                file_name="a.gif.mp4", mime_type="video/mp4",
            )  # fmt: skip
            return {"animation": anim, "document": {k: anim[k] for k in anim if k in DOC_KEYS}}
        if m == "location":
            return {"location": {"latitude": (n % 180) - 90.0, "longitude": (n % 360) - 180.0}}
        if m == "contact":
            return {"contact": {"phone_number": "+10000000", "first_name": "Ĉarlie", "user_id": n}}
        if m == "poll":
            return {"poll": _poll(n)}
        if m == "dice":
            emoji, top = [("🎲", 6), ("🎯", 6), ("🏀", 5), ("⚽", 5), ("🎳", 6), ("🎰", 64)][n % 6]
            return {"dice": {"emoji": emoji, "value": n % top + 1}}
        raise AssertionError(m)

    def _service(self, event: Event) -> dict[str, Any]:
        m, other = event.media, self.users["bob" if event.sender == "alice" else "alice"]
        if m == "new_chat_members":
            return {"new_chat_members": [other]}
        if m == "new_chat_members_bot":
            return {"new_chat_members": [self.tg.bot_user, other]}
        if m == "left_chat_member":
            return {"left_chat_member": other}
        if m == "new_chat_title":
            return {"new_chat_title": event.text}
        if m == "group_chat_created":
            return {"group_chat_created": True}
        if m == "forum_topic_created":
            return {"forum_topic_created": {"name": event.text[:128], "icon_color": 7322096}}
        chat_id = self.chat_ids[event.chat]
        ids = self._messages_in(chat_id)
        if m == "pinned_message" and ids:
            mid = ids[event.number % len(ids)]
            target = self.tg.messages.get((chat_id, mid)) or next(
                (s for s in self.sent if s["chat"]["id"] == chat_id and s["message_id"] == mid),
                None,
            )
            if target is not None:
                pinned = copy.deepcopy(target)
                pinned.pop("reply_to_message", None)
                return {"pinned_message": pinned}
        # An old message the bot cannot see any more arrives with date 0.
        return {
            "pinned_message": {"chat": self._chat(event.chat), "message_id": 999_999, "date": 0}
        }

    def _member(self, event: Event) -> dict[str, Any]:
        if event.kind == "my_chat_member":
            subject = self.tg.bot_user
        else:
            subject = self.users["bob" if event.sender == "alice" else "alice"]
        old = {"user": subject, "status": "left"}
        if event.media.startswith("old_"):
            self.unreadable += 1
        return {
            event.kind: {
                "chat": self._chat(event.chat),
                "from": self.users[event.sender],
                "date": int(time.time()),
                "old_chat_member": old,
                "new_chat_member": _chat_member(subject, event.media, event.number),
            }
        }

    def play(self, event: Event) -> None:
        tg = self.tg
        user = self.users[event.sender]
        if event.kind in ("text", "media", "service"):
            chat_id, chat_type = self.chat_ids[event.chat], self.chat_types[event.chat]
            if event.kind == "text":
                content: dict[str, Any] = {"text": event.text}
                if event.entities:
                    content["entities"] = event.entities
                elif event.text.startswith("/"):
                    command = event.text.split(maxsplit=1)[0]
                    content["entities"] = [
                        {"type": "bot_command", "offset": 0, "length": utf16_len(command)}
                    ]
            elif event.kind == "media":
                content = self._media(event)
                if event.text:
                    content["caption"] = event.text
                    if event.text.startswith("/"):
                        command = event.text.split(maxsplit=1)[0]
                        content["caption_entities"] = [
                            {"type": "bot_command", "offset": 0, "length": utf16_len(command)}
                        ]
            else:
                content = self._service(event)
            msg = tg.send_content(
                chat_id,
                content,
                user=user,
                chat_type=chat_type,
                reply_to_message_id=self._reply_to(event, chat_id),
                message_thread_id=event.topic,
            )
            self.sent.append(msg)
        elif event.kind == "edit":
            editable = [m for m in self.sent if "text" in m or "caption" in m]
            if not editable:
                return
            msg = copy.deepcopy(editable[event.number % len(editable)])
            msg["text" if "text" in msg else "caption"] = (
                event.text if "text" in msg else cut_utf16(event.text, 1024)
            )
            msg.pop("entities", None)
            msg.pop("caption_entities", None)
            msg["edit_date"] = int(time.time())
            tg.queue_update({"edited_message": msg})
        elif event.kind == "channel":
            chat = {"id": CHANNEL, "type": "channel", "title": "Fuzz Channel"}
            post = {
                "message_id": next(self.channel_ids),
                "sender_chat": chat,
                "chat": chat,
                "date": int(time.time()),
                "text": event.text,
            }
            kind = ("channel_post", "edited_channel_post")[event.number % 2]
            if kind == "edited_channel_post":
                post["edit_date"] = int(time.time())
            tg.queue_update({kind: post})
        elif event.kind in ("my_chat_member", "chat_member"):
            tg.queue_update(self._member(event))
        elif event.kind == "inline":
            query = {
                "id": str(10**17 + event.number),
                "from": user,
                "query": event.data,
                "offset": "",
                "chat_type": ("sender", "private", "group", "supergroup", "channel")[
                    event.number % 5
                ],
            }
            tg.queue_update({"inline_query": query})
        elif event.kind == "callback":
            self._press(event, user)
        elif event.kind == "chatless":
            tg.queue_update(self._chatless(event, user))
        else:
            raise AssertionError(event.kind)

    def _chatless(self, event: Event, user: dict[str, Any]) -> dict[str, Any]:
        n = event.number
        if event.media == "poll":
            return {"poll": _poll(n)}
        if event.media == "poll_answer":
            answer = {
                "poll_id": _poll(n)["id"],
                "option_ids": [n % 2],
                "option_persistent_ids": ["ab"[n % 2]],
                "user": user,
            }
            return {"poll_answer": answer}
        if event.media == "reaction_count":
            reactions = [{"type": {"type": "emoji", "emoji": "👍"}, "total_count": n + 1}]
            count = {
                "chat": self._chat(event.chat),
                "message_id": n + 1,
                "date": int(time.time()),
                "reactions": reactions,
            }
            return {"message_reaction_count": count}
        raise AssertionError(event.media)

    def _press(self, event: Event, user: dict[str, Any]) -> None:
        chat_id = self.chat_ids[event.chat]
        bots = sorted(mid for (cid, mid) in self.tg.messages if cid == chat_id)
        if event.media == "message" and bots:
            mid = bots[event.number % len(bots)]
            self.tg.press_button(chat_id, mid, event.data, user=user)
            return
        # A button under a message too old for Telegram to include: an InaccessibleMessage;
        # "stale": pressed while the bot was down, too old to answer now.
        query = {
            "id": str(next(self.query_ids)),
            "from": user,
            "message": {"chat": self._chat(event.chat), "message_id": 424242, "date": 0},
            "chat_instance": "-77",
            "data": event.data,
        }
        self.tg.send_callback_query(query, known=event.media != "stale")


DOC_KEYS = ("file_id", "file_unique_id", "file_size", "file_name", "mime_type")


def _poll(n: int) -> dict[str, Any]:
    return {
        "id": str(5 * 10**18 + n),
        "question": "🍌 or 🍎?",
        "options": [
            {"text": "🍌", "voter_count": n % 3, "persistent_id": "a"},
            {"text": "‏🍎", "voter_count": 0, "persistent_id": "b"},
        ],
        "total_voter_count": n % 3,
        "is_closed": bool(n % 2),
        "is_anonymous": True,
        "type": ("regular", "quiz")[n % 2],
        "allows_multiple_answers": False,
        "allows_revoting": False,
        "members_only": False,
        **({"correct_option_ids": [0]} if n % 2 else {}),
    }


def _chat_member(user: dict[str, Any], status: str, n: int) -> dict[str, Any]:
    """A ChatMember as today's Bot API sends it (every field the schema requires), or as an
    old one did ("old_...")."""
    flag = bool(n % 2)
    if status == "old_administrator":
        return {
            **copy.deepcopy(RECORDED_MY_CHAT_MEMBER["my_chat_member"]["new_chat_member"]),
            "user": user,
        }
    if status == "old_restricted":
        old_rights = (
            "can_change_info", "can_invite_users", "can_pin_messages", "can_send_messages",
            "can_send_media_messages", "can_send_polls", "can_send_other_messages",
            "can_add_web_page_previews",
        )  # fmt: skip
        rights = dict.fromkeys(old_rights, flag)
        return {"user": user, "status": "restricted", "is_member": True, **rights}
    if status == "member":
        return {"user": user, "status": "member"}
    if status == "left":
        return {"user": user, "status": "left"}
    if status == "kicked":
        return {"user": user, "status": "kicked", "until_date": 0 if flag else 4102444800}
    if status == "administrator":
        rights = (
            "can_manage_chat", "can_delete_messages", "can_manage_video_chats",
            "can_restrict_members", "can_promote_members", "can_change_info",
            "can_invite_users", "can_post_stories", "can_edit_stories", "can_delete_stories",
            "can_pin_messages", "can_manage_topics",
        )  # fmt: skip
        return {
            "user": user,
            "status": "administrator",
            "can_be_edited": False,
            "is_anonymous": False,
            **dict.fromkeys(rights, flag),
        }
    rights = (
        "can_send_messages", "can_send_audios", "can_send_documents", "can_send_photos",
        "can_send_videos", "can_send_video_notes", "can_send_voice_notes", "can_send_polls",
        "can_send_other_messages", "can_add_web_page_previews", "can_change_info",
        "can_invite_users", "can_pin_messages", "can_manage_topics", "can_edit_tag",
        "can_react_to_messages",
    )  # fmt: skip
    return {
        "user": user,
        "status": "restricted",
        "is_member": True,
        "until_date": 0,
        **dict.fromkeys(rights, flag),
    }


# --------------------------------------------------------------------------------------------
# Watching the bot


class Problems(logging.Handler):
    """Every ERROR (or worse) record and every record carrying a traceback, from any logger."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.skipped: list[logging.LogRecord] = []  # updates PTB could not read

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)
        elif record.name == "bot.telegram.updates":
            self.skipped.append(record)

    def describe(self) -> str:
        lines = []
        for r in self.records:
            lines.append(f"{r.levelname} {r.name}: {r.getMessage()}")
            if r.exc_info and r.exc_info[1] is not None:
                exc = r.exc_info[1]
                lines.append(f"  {type(exc).__name__}: {exc}")
                tb = exc.__traceback__
                while tb is not None and tb.tb_next is not None:
                    tb = tb.tb_next
                if tb is not None:
                    lines.append(f"  at {tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}")
        return "\n".join(lines)


async def settle(tg: FakeTelegram, running: RunningBot, timeout: float = 90.0) -> None:  # noqa: ASYNC109
    """Until every queued update is confirmed and the Application has handled all of them.
    Longer than a minute: the rate limiter may hold a group's 21st message in a minute."""
    assert running.app is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while tg.unconfirmed_updates:
        assert loop.time() < deadline, "updates not confirmed"
        await asyncio.sleep(0.01)
    await asyncio.wait_for(running.app.update_queue.join(), max(0.1, deadline - loop.time()))


@pytest.fixture
def problems() -> Any:
    handler = Problems()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


async def test_fuzz_updates_never_break_the_bot(
    start_bot: Callable[..., Awaitable[RunningBot]], tg: FakeTelegram, problems: Problems
) -> None:
    running = await start_bot(admin_user_ids=str(BOB))
    loop = asyncio.get_running_loop()
    world = World(tg)
    played = 0
    drawn: collections.Counter[str] = collections.Counter()

    async def play(batch: list[Event]) -> None:
        for event in batch:
            world.play(event)
        await settle(tg, running)

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=False,
    )
    @given(st.lists(events(), min_size=1, max_size=5))
    def check(batch: list[Event]) -> None:
        nonlocal played
        problems.records.clear()
        problems.skipped.clear()
        world.unreadable = 0
        asyncio.run_coroutine_threadsafe(play(batch), loop).result(timeout=120)
        played += 1
        assert not problems.records, problems.describe()
        # Everything else drawn is well-formed: PTB read every other update.
        skipped = [r.getMessage() for r in problems.skipped]
        assert len(skipped) == world.unreadable, skipped
        drawn["unreadable"] += world.unreadable
        for event in batch:
            drawn[event.kind] += 1
        assert not tg.server_errors, tg.server_errors

    await asyncio.to_thread(check)
    assert played > 0
    # The draw reached every kind (a strategy that stopped drawing one would hide it).
    wanted = {"text", "media", "callback", "my_chat_member", "chat_member", "inline"}
    assert wanted <= set(drawn), drawn
    assert drawn["unreadable"] > 0 or not CASES.old_api_members, drawn

    # A normal request still works.
    before = len(tg.calls_of("sendPhoto"))
    tg.send_text(CAROL, "a lighthouse at dawn", user=tg.user(CAROL, "Carol"))
    photos = await tg.wait_for("sendPhoto", lambda c: c.ok, count=before + 1, timeout=20)
    assert int(photos[-1].params["chat_id"]) == CAROL
    assert not problems.records, problems.describe()
