"""Types shared by every upstream dialect: what we ask for, what comes back, where we send it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from bot.providers.profiles import ProfileOverride

from bot.providers.concurrency import CEILING, FLOOR
from bot.providers.errors import ProviderErrorKind

AuthStyle = Literal["bearer", "raw", "x-goog-api-key", "query-key"]
DialectName = Literal["openai-chat", "openai-images", "gemini"]
#: Google's own API host: it streams (`:streamGenerateContent?alt=sse`) unless told otherwise.
GOOGLE_HOST = "generativelanguage.googleapis.com"


@dataclass(frozen=True)
class Endpoint:
    """One upstream endpoint: a relay or Google itself. Many endpoints speak one dialect."""

    name: str
    dialect: DialectName
    base_url: str
    api_key: str = field(repr=False)
    auth_style: AuthStyle = "bearer"
    models: tuple[str, ...] = ()
    timeout: float = 120.0
    price_per_image: float | None = None
    # Requests in flight adapt between these (bot/providers/concurrency.py); equal = fixed.
    min_concurrency: int = FLOOR
    max_concurrency: int = CEILING
    extra_body: dict[str, Any] = field(default_factory=dict)
    prices: dict[str, float] = field(default_factory=dict)  # per model; else price_per_image
    profile: ProfileOverride | None = None  # where this relay differs from the model profiles
    stream: bool | None = None  # read answers as they stream; None: only on Google's own host

    def streams(self) -> bool:
        """Whether answers are streamed: as set, else on for Google's host (relays often
        buffer or mangle SSE, so they stream only when the providers file says so)."""
        if self.stream is not None:
            return self.stream
        return urlsplit(self.base_url).hostname == GOOGLE_HOST

    # A relay may bill every 200 answer, image or not: such an answer is never resent unless
    # the endpoint says its 200s without an image cost nothing.
    resend_after_200: bool = False

    def auth_headers(self) -> dict[str, str]:
        if not self.api_key:
            return {}
        if self.auth_style == "bearer":
            return {"Authorization": f"Bearer {self.api_key}"}
        if self.auth_style == "raw":
            return {"Authorization": self.api_key}
        if self.auth_style == "x-goog-api-key":
            return {"x-goog-api-key": self.api_key}
        return {}

    def auth_params(self) -> dict[str, str]:
        if self.api_key and self.auth_style == "query-key":
            return {"key": self.api_key}
        return {}


@dataclass(frozen=True)
class InputImage:
    """An image we send upstream, already normalised (JPEG/PNG/WebP, sane size)."""

    data: bytes = field(repr=False)
    mime: str


#: What a dialect keeps of a part beyond its words or picture (Gemini's thoughtSignature, say):
#: JSON fields only that dialect reads, passed back to it verbatim.
Token = dict[str, Any]


@dataclass(frozen=True)
class TextPart:
    text: str
    token: Token | None = None


@dataclass(frozen=True)
class ImagePart:
    """A picture in a turn: by its blob (sha256) when stored, with its bytes once loaded."""

    mime: str
    sha256: str | None = None
    data: bytes | None = field(default=None, repr=False)
    token: Token | None = None

    def loaded(self) -> bytes:
        """Its bytes, which whoever builds the request loads from the blob store beforehand."""
        if self.data is None:
            raise ValueError(f"image part {self.sha256} has no bytes loaded")
        return self.data


@dataclass(frozen=True)
class TokenPart:
    """A part only its dialect understands (neither words nor a picture), kept for it verbatim."""

    token: Token


Part = TextPart | ImagePart | TokenPart


@dataclass(frozen=True)
class Turn:
    """One earlier turn of a conversation, for dialects that take real history (gemini).

    Parts are neutral: each dialect turns its answer into them and renders them back."""

    role: Literal["user", "model"]
    parts: list[Part]


@dataclass
class ImageRequest:
    prompt: str
    model: str
    images: list[InputImage] = field(default_factory=list)
    aspect_ratio: str | None = None
    image_size: str | None = None
    n: int = 1
    history: list[Turn] = field(default_factory=list)
    search: bool = False  # ground the answer with Google Search (where the dialect can)
    # Awaited just before the request is first sent (the pool calls it inside the endpoint's
    # slot): the job records that it may be billed from now on.
    on_send: Callable[[], Awaitable[None]] | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class ImageRef:
    """An image as found in an answer: inline bytes or a URL still to download."""

    data: bytes | None = field(default=None, repr=False)
    url: str | None = None
    mime: str | None = None


@dataclass(frozen=True)
class Source:
    """A web page a grounded answer drew on (Gemini groundingChunks[].web)."""

    uri: str
    title: str = ""


@dataclass
class ParsedAnswer:
    """What a dialect's pure parser found in a 200 answer."""

    images: list[ImageRef] = field(default_factory=list)
    text: str | None = None
    model_turn: Turn | None = None
    usage: dict[str, Any] | None = None
    task_id: str | None = None
    sources: list[Source] = field(default_factory=list)


@dataclass(frozen=True)
class GeneratedImage:
    data: bytes = field(repr=False)
    mime: str


@dataclass
class ImageResult:
    """Final answer of one upstream call: image bytes in hand (URLs already downloaded)."""

    images: list[GeneratedImage] = field(default_factory=list)
    text: str | None = None
    model_turn: Turn | None = None
    usage: dict[str, Any] | None = None
    endpoint: str = ""
    model: str = ""
    sources: list[Source] = field(default_factory=list)


@dataclass(frozen=True)
class Queued:
    """Waiting for a free upstream slot; `position` 1 is next."""

    position: int


@dataclass(frozen=True)
class Started:
    """The job has its slot; `editing` when it works on input images."""

    editing: bool = False


@dataclass(frozen=True)
class Retrying:
    """An attempt failed and another one follows (on this endpoint or the next)."""

    reason: ProviderErrorKind


@dataclass(frozen=True)
class TaskPolling:
    """An async task's state as its relay reports it; `percent` only where the relay says."""

    status: Literal["submitted", "processing", "succeed", "failed"]
    percent: int | None = None


@dataclass(frozen=True)
class Thinking:
    """A thought summary the model streamed while it works (its words, not the answer)."""

    text: str


@dataclass(frozen=True)
class Done:
    """The result is recorded; what follows is its delivery."""


ProgressEvent = Queued | Started | Retrying | TaskPolling | Thinking | Done


class ProgressCallback(Protocol):
    async def __call__(self, event: ProgressEvent) -> None: ...


class ImageProvider(Protocol):
    endpoint: Endpoint

    async def generate(
        self, request: ImageRequest, progress: ProgressCallback | None = None
    ) -> ImageResult: ...
