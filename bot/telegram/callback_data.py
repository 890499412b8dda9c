"""Typed callback data: one small codec builds and parses every button the bot sends.

Each button kind is a frozen dataclass with a wire prefix and typed fields; `encode` turns
one into Telegram's callback data (`<prefix>[:<field>...]`, at most 64 bytes of UTF-8) and
`decode` turns data back into one, or None for anything malformed (unknown prefix, wrong
field count, an id that is not plain ASCII digits in canonical form or is beyond SQLite's
2**63-1, a value outside its known set, over 64 bytes). Constructing a kind validates its
fields, so everything `encode` returns decodes to an equal object.

Versioning. The formats below are version 1: the strings the bot has sent since its first
release, with no version marker, and they must keep decoding for as long as the bot runs,
because buttons under old messages are pressed after an upgrade. The rule for a change:
an existing prefix never changes meaning or field layout. A kind that needs other fields
gets a new prefix (e.g. `regen2:<job>:<n>`), and the old prefix stays registered and keeps
decoding (to the old class, which handlers go on accepting); a change of the whole scheme
starts every string with a marker that no version-1 prefix can be confused with (e.g. `2|`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from bot.services import styles
from bot.services.prefs import LANGUAGES, MATCH_INPUT, RATIOS, REPLY_MODES, SIZES

LIMIT = 64  # bytes: Telegram's limit for callback_data
MAX_ID = 2**63 - 1  # SQLite's integer; a bigger id names nothing
SEP = ":"
AUTO = "auto"  # on the wire, the None of an optional choice ("the model's default")
SETTING_FIELDS = ("model", "ratio", "size", "reply", "language")


class _Id:
    """A row id, page or index: a non-negative int SQLite can hold, in canonical decimal."""

    def valid(self, value: object) -> bool:
        return type(value) is int and 0 <= value <= MAX_ID

    def show(self, value: Any) -> str:
        return str(value)

    def parse(self, text: str) -> object:
        canonical = text.isascii() and text.isdigit() and (text == "0" or text[0] != "0")
        if not canonical or len(text) > len(str(MAX_ID)) or int(text) > MAX_ID:
            raise ValueError(text)
        return int(text)


class _Choice:
    """One of a known set of strings; optionally None, sent as `auto`."""

    def __init__(self, values: tuple[str, ...], *, optional: bool = False) -> None:
        assert AUTO not in values
        self._values, self._optional = values, optional

    def valid(self, value: object) -> bool:
        return value in self._values or (self._optional and value is None)

    def show(self, value: Any) -> str:
        return AUTO if value is None else str(value)

    def parse(self, text: str) -> object:
        value = None if self._optional and text == AUTO else text
        if not self.valid(value):
            raise ValueError(text)
        return value


def _typed(codec: _Id | _Choice) -> Any:
    return field(metadata={"codec": codec})


_ROW_ID = _Id()


@dataclass(frozen=True)
class CallbackData:
    """A button's data; subclasses name their PREFIX and give each field a codec."""

    PREFIX: ClassVar[str] = ""

    def __post_init__(self) -> None:
        for f in fields(self):
            if not f.metadata["codec"].valid(getattr(self, f.name)):
                raise ValueError(
                    f"{type(self).__name__}.{f.name} cannot be {getattr(self, f.name)!r}"
                )


@dataclass(frozen=True)
class Regenerate(CallbackData):
    """🔁 under a result (and Retry under an interrupted job's notice): run that job again."""

    PREFIX: ClassVar[str] = "regen"
    job_id: int = _typed(_ROW_ID)


@dataclass(frozen=True)
class Vary(CallbackData):
    """Variations under a result: that job again, several pictures."""

    PREFIX: ClassVar[str] = "var"
    job_id: int = _typed(_ROW_ID)


@dataclass(frozen=True)
class SendOriginal(CallbackData):
    """Original (and 📎 under an album): that image as a file."""

    PREFIX: ClassVar[str] = "orig"
    image_id: int = _typed(_ROW_ID)


@dataclass(frozen=True)
class StartOver(CallbackData):
    """✨ New: the next text draws a new picture."""

    PREFIX: ClassVar[str] = "new"


@dataclass(frozen=True)
class SetRatio(CallbackData):
    """/ratio's choices: a ratio, MATCH_INPUT, or None for the model's default."""

    PREFIX: ClassVar[str] = "ratio"
    ratio: str | None = _typed(_Choice((*RATIOS, MATCH_INPUT), optional=True))


@dataclass(frozen=True)
class PickFromHistory(CallbackData):
    """An entry of /history: resend that image and make it current."""

    PREFIX: ClassVar[str] = "hist"
    image_id: int = _typed(_ROW_ID)


@dataclass(frozen=True)
class TurnHistoryPage(CallbackData):
    """◀️ / ▶️ in /history (pages count from 0)."""

    PREFIX: ClassVar[str] = "histp"
    page: int = _typed(_ROW_ID)


@dataclass(frozen=True)
class OpenSettings(CallbackData):
    """Back to the /settings menu."""

    PREFIX: ClassVar[str] = "set:menu"


@dataclass(frozen=True)
class OpenSetting(CallbackData):
    """One setting's choices in /settings."""

    PREFIX: ClassVar[str] = "set:open"
    setting: str = _typed(_Choice(SETTING_FIELDS))


@dataclass(frozen=True)
class SetModel(CallbackData):
    """A model, by its index in the configured list (long model ids would not fit 64 bytes)."""

    PREFIX: ClassVar[str] = "set:model"
    index: int = _typed(_ROW_ID)


@dataclass(frozen=True)
class SetSize(CallbackData):
    PREFIX: ClassVar[str] = "set:size"
    size: str | None = _typed(_Choice(SIZES, optional=True))


@dataclass(frozen=True)
class SetReply(CallbackData):
    PREFIX: ClassVar[str] = "set:reply"
    mode: str = _typed(_Choice(REPLY_MODES))


@dataclass(frozen=True)
class SetLanguage(CallbackData):
    PREFIX: ClassVar[str] = "set:language"
    language: str | None = _typed(_Choice(LANGUAGES, optional=True))


@dataclass(frozen=True)
class ToggleRefine(CallbackData):
    PREFIX: ClassVar[str] = "set:refine:toggle"


@dataclass(frozen=True)
class OpenBuy(CallbackData):
    """⭐ Buy under a refusal for too few credits: show the packs (/buy)."""

    PREFIX: ClassVar[str] = "buy:menu"


@dataclass(frozen=True)
class BuyPack(CallbackData):
    """One pack of /buy: send its invoice. The pack is checked again at checkout."""

    PREFIX: ClassVar[str] = "buy:pack"
    stars: int = _typed(_ROW_ID)


@dataclass(frozen=True)
class ToggleSearch(CallbackData):
    """Google Search grounding on or off (offered only for models that take it)."""

    PREFIX: ClassVar[str] = "set:search:toggle"


@dataclass(frozen=True)
class ConfirmForget(CallbackData):
    """/forget's confirmation: delete this user's data (only they may press it)."""

    PREFIX: ClassVar[str] = "forget"
    user_id: int = _typed(_ROW_ID)


@dataclass(frozen=True)
class KeepData(CallbackData):
    """/forget's other answer: keep everything."""

    PREFIX: ClassVar[str] = "keepdata"


@dataclass(frozen=True)
class Rerender(CallbackData):
    """2K / 4K under a result: that job again at this size (offered where the model takes it)."""

    PREFIX: ClassVar[str] = "up"
    job_id: int = _typed(_ROW_ID)
    size: str = _typed(_Choice(SIZES))


@dataclass(frozen=True)
class PickRatio(CallbackData):
    """📐 Ratio under a result: a keyboard of the model's ratios for that job."""

    PREFIX: ClassVar[str] = "arp"
    job_id: int = _typed(_ROW_ID)


@dataclass(frozen=True)
class Reframe(CallbackData):
    """One ratio of PickRatio's keyboard: that job again in this ratio."""

    PREFIX: ClassVar[str] = "arj"
    job_id: int = _typed(_ROW_ID)
    ratio: str = _typed(_Choice(RATIOS))


@dataclass(frozen=True)
class OpenStyles(CallbackData):
    """🎨 Style under a result: the style gallery for that image (0: for the next text)."""

    PREFIX: ClassVar[str] = "stg"
    image_id: int = _typed(_ROW_ID)


@dataclass(frozen=True)
class ApplyStyle(CallbackData):
    """A curated style of the gallery, on that image now (image 0: on the next text)."""

    PREFIX: ClassVar[str] = "sty"
    key: str = _typed(_Choice(styles.KEYS))
    image_id: int = _typed(_ROW_ID)


@dataclass(frozen=True)
class ApplyOwnStyle(CallbackData):
    """A chat's own style (its row), on that image now (image 0: on the next text)."""

    PREFIX: ClassVar[str] = "sto"
    style_id: int = _typed(_ROW_ID)
    image_id: int = _typed(_ROW_ID)


KINDS: tuple[type[CallbackData], ...] = (
    Regenerate,
    Vary,
    SendOriginal,
    StartOver,
    SetRatio,
    PickFromHistory,
    TurnHistoryPage,
    OpenSettings,
    OpenSetting,
    SetModel,
    SetSize,
    SetReply,
    SetLanguage,
    ToggleRefine,
    OpenBuy,
    BuyPack,
    ToggleSearch,
    ConfirmForget,
    KeepData,
    Rerender,
    PickRatio,
    Reframe,
    OpenStyles,
    ApplyStyle,
    ApplyOwnStyle,
)
#: Buttons that change (or open) the chat-wide settings: in groups, for the group's admins.
SETTINGS = (
    SetRatio,
    OpenSettings,
    OpenSetting,
    SetModel,
    SetSize,
    SetReply,
    SetLanguage,
    ToggleRefine,
    ToggleSearch,
)
_BY_PREFIX = {kind.PREFIX: kind for kind in KINDS}
# A prefix that continued another (`set` and `set:menu`) would make decoding ambiguous.
assert len(_BY_PREFIX) == len(KINDS) and not any(
    a.startswith(b + SEP) for a in _BY_PREFIX for b in _BY_PREFIX
)
_MAX_PREFIX_PARTS = max(p.count(SEP) + 1 for p in _BY_PREFIX)


def encode(data: CallbackData) -> str:
    """The callback data for a button; raises ValueError if it would not fit 64 bytes."""
    parts = [data.PREFIX]
    for f in fields(data):
        parts.append(f.metadata["codec"].show(getattr(data, f.name)))
    text = SEP.join(parts)
    if len(text.encode()) > LIMIT or any(SEP in p for p in parts[1:-1]):
        raise ValueError(f"{type(data).__name__} does not encode: {text!r}")
    return text


def decode(text: object) -> CallbackData | None:
    """The button that data names, or None for anything this bot never sent."""
    if not isinstance(text, str) or len(text.encode("utf-8", "replace")) > LIMIT:
        return None
    segments = text.split(SEP, _MAX_PREFIX_PARTS)
    for n in range(1, min(len(segments), _MAX_PREFIX_PARTS) + 1):
        kind = _BY_PREFIX.get(SEP.join(segments[:n]))
        if kind is not None:
            return _build(kind, text[len(kind.PREFIX) :])
    return None


def _build(kind: type[CallbackData], rest: str) -> CallbackData | None:
    codecs = [f.metadata["codec"] for f in fields(kind)]
    if not codecs:
        return kind() if rest == "" else None
    if not rest.startswith(SEP):
        return None
    values = rest[1:].split(SEP, len(codecs) - 1)  # the last field may hold ':' (a ratio)
    if len(values) != len(codecs):
        return None
    try:
        return kind(*(codec.parse(value) for codec, value in zip(codecs, values, strict=True)))
    except ValueError:
        return None


def of_kind(*kinds: type[CallbackData]) -> Callable[[object], bool]:
    """A CallbackQueryHandler pattern: data that decodes to one of these kinds."""
    return lambda text: isinstance(decode(text), kinds)
