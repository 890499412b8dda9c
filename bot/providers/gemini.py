"""The `gemini` dialect: Gemini-native generateContent (Google directly, S3-style relays; §1A).

Pure `build_request` / `parse_response` (tested on JSON alone) and a small class for the HTTP.
Refusals arrive as 200 answers (§2): a blocked prompt has no candidates, a candidate that made
no image says why in `finishReason`. For real history (§3) an answer becomes a neutral model turn
(`read_content`) and neutral turns become `contents` again (`contents_of`), thought signatures
and any other field of a part kept verbatim in its token.

Models that think are asked for thought summaries (`includeThoughts`). Where the endpoint
streams (`Endpoint.streams()`: `:streamGenerateContent?alt=sse`), each event is one chunk of the
answer: thought parts become `Thinking` progress events and are dropped, the rest is put back
together (`StreamedAnswer`) into the answer generateContent gives, and parsed by the same code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pybase64

from bot.providers.base import (
    Endpoint,
    ImagePart,
    ImageRef,
    ImageRequest,
    ImageResult,
    ParsedAnswer,
    Part,
    ProgressCallback,
    Source,
    TextPart,
    Thinking,
    Token,
    TokenPart,
    Turn,
)
from bot.providers.errors import ProviderError, ProviderErrorKind
from bot.providers.extract import (
    Body,
    answer_object,
    bad_response,
    checked_mime,
    clean_detail,
    decode_base64,
    deep_merge,
    error_from_http,
)
from bot.providers.http import (
    SMALL_ANSWER_BYTES,
    EndpointClient,
    in_gil_lane,
    post_and_stream,
    tagged,
)
from bot.providers.profiles import ModelProfile, profile_for

# finishReason / blockReason values that mean "refused" (§2). Any image present is a success.
BLOCK_REASONS = frozenset(
    {
        "SAFETY",
        "IMAGE_SAFETY",
        "PROHIBITED_CONTENT",
        "IMAGE_PROHIBITED_CONTENT",
        "BLOCKLIST",
        "SPII",
        "RECITATION",  # the output resembled existing content
        "IMAGE_RECITATION",
    }
)
# Words inside reasons Google may add later (or Vertex sends: MODEL_ARMOR, JAILBREAK).
_BLOCK_MARKERS = ("SAFETY", "PROHIBITED", "BLOCKLIST", "RECITATION", "SPII", "JAILBREAK", "ARMOR")
_MODALITIES = ["TEXT", "IMAGE"]  # image-only is refused by some models and relays (S3)
_INLINE_KEYS = ("inlineData", "inline_data")
# Google Search grounding as GI writes the tool (REST): the model decides whether to search.
SEARCH_TOOL: dict[str, Any] = {"googleSearch": {}}
#: Sources kept of one grounded answer (Google sends a handful; a caption shows fewer).
MAX_SOURCES = 10


# --- request ------------------------------------------------------------------------------


def model_id(model: str) -> str:
    """The bare model ID: `models/gemini-x` (the API's resource name) becomes `gemini-x`."""
    return model.strip().removeprefix("models/")


def endpoint_url(base_url: str, model: str, *, stream: bool = False) -> str:
    """`{base}/v1beta/models/{model}:generateContent` (or `:streamGenerateContent?alt=sse`,
    the streamed answer as server-sent events); a base that already ends in /v1beta (a common
    way to write a relay's URL) is not doubled."""
    base = base_url.rstrip("/").removesuffix("/v1beta")
    if stream:
        return f"{base}/v1beta/models/{model_id(model)}:streamGenerateContent?alt=sse"
    return f"{base}/v1beta/models/{model_id(model)}:generateContent"


def _image_config(req: ImageRequest, profile: ModelProfile) -> dict[str, str]:
    ratio, size = profile.sendable(req.aspect_ratio, req.image_size)
    config = {}
    if ratio:
        config["aspectRatio"] = ratio
    if size:
        config["imageSize"] = size
    return config


def _generation_config(req: ImageRequest, endpoint: Endpoint) -> dict[str, Any]:
    """responseModalities always; no candidateCount: image models ignore or refuse n > 1, so
    the caller repeats the call instead. A model that thinks is asked for thought summaries:
    parts marked `thought: true` (https://ai.google.dev/gemini-api/docs/thinking, "Thought
    summaries": generationConfig.thinkingConfig.includeThoughts)."""
    profile = profile_for(req.model, endpoint)
    config: dict[str, Any] = {"responseModalities": list(_MODALITIES)}
    image_config = _image_config(req, profile)
    if image_config:
        config["imageConfig"] = image_config
    if profile.thinks:
        config["thinkingConfig"] = {"includeThoughts": True}
    return config


def _part_json(part: Part) -> dict[str, Any]:
    """A neutral part as a Gemini part; its token's fields (thoughtSignature) go back beside it."""
    if isinstance(part, TokenPart):
        return dict(part.token)
    if isinstance(part, TextPart):
        body: dict[str, Any] = {"text": part.text}
    else:
        data = pybase64.b64encode_as_string(part.loaded())
        body = {"inlineData": {"mimeType": part.mime, "data": data}}
    return {**body, **part.token} if part.token else body


def contents_of(turns: Sequence[Turn]) -> list[dict[str, Any]]:
    """Neutral turns as generateContent `contents`."""
    return [{"role": turn.role, "parts": [_part_json(p) for p in turn.parts]} for turn in turns]


def _user_turn(req: ImageRequest) -> Turn:
    """The new turn: the words first, then each image (the order Google and OpenRouter advise)."""
    images = [ImagePart(mime=image.mime, data=image.data) for image in req.images]
    return Turn("user", [TextPart(req.prompt), *images])


def build_request(req: ImageRequest, endpoint: Endpoint) -> dict[str, Any]:
    """The JSON body: earlier turns (thought signatures included), then the new turn.

    `endpoint.extra_body` (say `safetySettings`, or `generationConfig.temperature`) is merged
    underneath: what this request needs wins. CPU-heavy with big images: run it in a thread."""
    core: dict[str, Any] = {
        "contents": contents_of([*req.history, _user_turn(req)]),
        "generationConfig": _generation_config(req, endpoint),
    }
    if req.search:
        core["tools"] = [dict(SEARCH_TOOL)]
    if not endpoint.extra_body:
        return core
    extra = {k: v for k, v in endpoint.extra_body.items() if k != "contents"}
    return deep_merge(extra, core)


# --- response -----------------------------------------------------------------------------


def _field(obj: Mapping[str, Any], camel: str, snake: str) -> Any:
    """A field by its camelCase name (Google) or snake_case one (some relays)."""
    value = obj.get(camel)
    return obj.get(snake) if value is None else value


def _text_field(obj: Mapping[str, Any], camel: str, snake: str) -> str | None:
    value = _field(obj, camel, snake)
    return value if isinstance(value, str) and value else None


def _is_block(reason: str) -> bool:
    return reason in BLOCK_REASONS or any(marker in reason for marker in _BLOCK_MARKERS)


def _refusal(
    kind: ProviderErrorKind, what: str, reason: str | None, message: str | None
) -> ProviderError:
    detail = f"{what} ({reason})" if reason else what
    if message:
        detail += f": {message}"
    return ProviderError(kind, clean_detail(detail), reason=reason)


def _no_candidates(answer: Mapping[str, Any], body: Body) -> ProviderError:
    """Why an answer has no candidates: a blocked prompt, an error object sent with 200, or -."""
    feedback = _field(answer, "promptFeedback", "prompt_feedback")
    if isinstance(feedback, Mapping):
        reason = _text_field(feedback, "blockReason", "block_reason")
        if reason:
            message = _text_field(feedback, "blockReasonMessage", "block_reason_message")
            return _refusal(ProviderErrorKind.BLOCKED, "prompt blocked", reason, message)
    err = answer.get("error")
    if isinstance(err, Mapping) and isinstance(err.get("code"), int) and 400 <= err["code"] < 600:
        return error_from_http(err["code"], body, {}, "")  # a relay's error sent with 200
    if err:
        return bad_response(clean_detail(f"error in a 200 answer: {err}"))
    return ProviderError(ProviderErrorKind.NO_IMAGE, "answer has no candidates")


def _first_candidate(answer: Mapping[str, Any], body: Body) -> Mapping[str, Any]:
    candidates = answer.get("candidates")
    if not isinstance(candidates, list) or not candidates:
        raise _no_candidates(answer, body)
    first = candidates[0]
    if not isinstance(first, Mapping):
        raise bad_response(f"answer's first candidate is JSON {type(first).__name__}")
    return first


def _parts(candidate: Mapping[str, Any]) -> list[Any]:
    content = candidate.get("content")  # absent when the candidate was stopped (§2)
    parts = content.get("parts") if isinstance(content, Mapping) else None
    return parts if isinstance(parts, list) else []


def _inline_data(part: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """A part's inline image object (under its camelCase or snake_case key), if it has one."""
    for key in _INLINE_KEYS:
        value = part.get(key)
        if isinstance(value, Mapping):
            return value
    return None


def _decoded(inline: Mapping[str, Any]) -> tuple[bytes, str]:
    """Decoded bytes of an inline image, typed by their magic bytes (not the declared type)."""
    payload = inline.get("data")
    if not isinstance(payload, str) or not payload:
        raise bad_response("inlineData without data")
    data = decode_base64(payload)
    declared = _text_field(inline, "mimeType", "mime_type")
    return data, checked_mime(data, declared)


def _token(part: Mapping[str, Any], content_keys: Sequence[str]) -> Token | None:
    """A part's fields besides its words or picture (thoughtSignature and the like)."""
    rest = {k: v for k, v in part.items() if k not in content_keys}
    return rest or None


def _text_part(part: Mapping[str, Any]) -> Part:
    """Words (with their token), or a part of another kind kept whole."""
    text = part.get("text")
    if isinstance(text, str):
        return TextPart(text, _token(part, ("text",)))
    return TokenPart(dict(part))


def read_content(candidate: Mapping[str, Any]) -> tuple[list[ImageRef], Turn | None]:
    """A candidate's images (decoded) and its content as a neutral model turn (None when it kept
    nothing), skipping 3 Pro's `thought` parts: its interim "thinking" images are neither the
    answer nor history. Raises BAD_RESPONSE for a broken inline image."""
    images: list[ImageRef] = []
    kept: list[Part] = []
    for part in _parts(candidate):
        if not isinstance(part, dict) or part.get("thought"):
            continue
        inline = _inline_data(part)
        if inline is None:
            kept.append(_text_part(part))
            continue
        data, mime = _decoded(inline)
        images.append(ImageRef(data=data, mime=mime))
        kept.append(ImagePart(mime=mime, data=data, token=_token(part, _INLINE_KEYS)))
    return images, Turn("model", kept) if kept else None


def stored_model_turn(parts: Sequence[Any]) -> Turn:
    """A model turn as jobs.model_parts held it before turns were neutral: Gemini parts whose
    inline images were swapped for {"inlineData": {"mimeType": ..., "blob": sha256}}."""
    kept: list[Part] = []
    for part in parts:
        if not isinstance(part, dict):
            continue
        inline = _inline_data(part)
        if inline is None:
            kept.append(_text_part(part))
        elif isinstance(inline.get("blob"), str) and isinstance(inline.get("mimeType"), str):
            token = _token(part, _INLINE_KEYS)
            kept.append(ImagePart(mime=inline["mimeType"], sha256=inline["blob"], token=token))
        else:
            kept.append(TokenPart(dict(part)))  # as the old reader passed it on: verbatim
    return Turn("model", kept)


def _raise_unless_words(candidate: Mapping[str, Any], text: str | None) -> None:
    """No image: a refusal by finishReason, or no answer at all, unless the model spoke words.

    Words without an image are a normal answer (the bot shows them) unless they came with a
    block reason; `finishMessage` goes into the error's detail."""
    reason = _text_field(candidate, "finishReason", "finish_reason")
    message = _text_field(candidate, "finishMessage", "finish_message")
    if reason and _is_block(reason):
        raise _refusal(ProviderErrorKind.BLOCKED, "output blocked", reason, message)
    if not text:
        raise _refusal(ProviderErrorKind.NO_IMAGE, "no image in the answer", reason, message)


def _usage(answer: Mapping[str, Any]) -> dict[str, Any] | None:
    usage = _field(answer, "usageMetadata", "usage_metadata")
    return usage if isinstance(usage, dict) else None


def read_sources(candidate: Mapping[str, Any]) -> list[Source]:
    """The web pages of a grounded candidate (groundingMetadata.groundingChunks[].web), once
    each, in Google's order; chunks without an http(s) link are skipped."""
    meta = _field(candidate, "groundingMetadata", "grounding_metadata")
    chunks = (
        _field(meta, "groundingChunks", "grounding_chunks") if isinstance(meta, Mapping) else None
    )
    found: list[Source] = []
    seen: set[str] = set()
    for chunk in chunks if isinstance(chunks, list) else []:
        web = chunk.get("web") if isinstance(chunk, Mapping) else None
        uri = web.get("uri") if isinstance(web, Mapping) else None
        if not isinstance(uri, str) or not uri.startswith(("https://", "http://")) or uri in seen:
            continue
        seen.add(uri)
        title = web.get("title") if isinstance(web, Mapping) else None
        found.append(Source(uri=uri, title=title.strip() if isinstance(title, str) else ""))
        if len(found) == MAX_SOURCES:
            break
    return found


def parse_response(body: Body) -> ParsedAnswer:
    """Images (decoded), words, usage and the model's turn of a 200 generateContent answer.

    CPU-heavy for big answers (JSON + base64 of 20+ MB at 4K): run it in a thread."""
    return parse_answer(answer_object(body), body)


def parse_answer(answer: Mapping[str, Any], body: Body = b"") -> ParsedAnswer:
    """parse_response on an answer already read as JSON (`body`: its bytes, for error text)."""
    candidate = _first_candidate(answer, body)
    images, model_turn = read_content(candidate)
    texts = [p.text for p in model_turn.parts if isinstance(p, TextPart)] if model_turn else []
    text = "\n".join(t.strip() for t in texts if t.strip()) or None
    if not images:
        _raise_unless_words(candidate, text)
    return ParsedAnswer(
        images=images,
        text=text,
        model_turn=model_turn,
        usage=_usage(answer),
        sources=read_sources(candidate),
    )


# --- streamed answers (alt=sse) ---------------------------------------------------------


def stream_chunk(data: bytes | bytearray) -> Mapping[str, Any] | None:
    """One SSE event's JSON (a GenerateContentResponse chunk); None for a relay's `[DONE]`."""
    if data.strip() == b"[DONE]":
        return None
    return answer_object(data)


def _blocked_prompt(chunk: Mapping[str, Any]) -> bool:
    feedback = _field(chunk, "promptFeedback", "prompt_feedback")
    return isinstance(feedback, Mapping) and bool(
        _text_field(feedback, "blockReason", "block_reason")
    )


def _continues(part: Mapping[str, Any], last: Mapping[str, Any]) -> bool:
    """Bare words that go on the words before (streaming cuts one text part into pieces)."""
    return (
        part.keys() == {"text"}
        and isinstance(part["text"], str)
        and isinstance(last.get("text"), str)
        and not last.get("thought")
    )


class StreamedAnswer:
    """The chunks of a streamed answer, put back together into the answer generateContent gives:
    the candidate's parts in order (thought parts dropped, as `read_content` drops them, so
    their interim images are not held), its other fields and the answer's (usageMetadata, the
    cumulative count) as the latest chunk has them."""

    def __init__(self) -> None:
        self._parts: list[dict[str, Any]] = []
        self._candidate: dict[str, Any] = {}
        self._top: dict[str, Any] = {}
        self._candidates_seen = False

    def add(self, chunk: Mapping[str, Any], data: bytes | bytearray = b"") -> list[str]:
        """The thought summaries in `chunk`; raises at once for an error or a blocked prompt
        (`data`: the event's bytes, for the error's text), as parse_response would."""
        candidates = chunk.get("candidates")
        if not isinstance(candidates, list) or not candidates:
            if chunk.get("error") or _blocked_prompt(chunk):
                raise _no_candidates(chunk, data)
            self._top.update(chunk)
            return []
        self._top.update({k: v for k, v in chunk.items() if k != "candidates"})
        first = _first_candidate(chunk, data)
        self._candidates_seen = True
        self._candidate.update({k: v for k, v in first.items() if k != "content"})
        thoughts: list[str] = []
        for part in _parts(first):
            if not isinstance(part, dict):
                continue
            if part.get("thought"):
                text = part.get("text")
                if isinstance(text, str) and text.strip():
                    thoughts.append(text)
                continue
            if part.keys() == {"text"} and part["text"] == "":
                continue  # the empty words a last chunk often carries: nothing to keep
            last = self._parts[-1] if self._parts else None
            if last is not None and _continues(part, last):
                last["text"] += part["text"]
            else:
                self._parts.append(dict(part))
        return thoughts

    def take(self) -> dict[str, Any]:
        """The whole answer, as one generateContent body would read; the parts are handed over
        (the assembly is empty afterwards), so the answer's images are held once."""
        answer = dict(self._top)
        if self._candidates_seen:
            parts, self._parts = self._parts, []
            answer["candidates"] = [
                {**self._candidate, "content": {"role": "model", "parts": parts}}
            ]
        return answer


# --- provider -----------------------------------------------------------------------------


class GeminiProvider(EndpointClient):
    """One endpoint speaking Gemini-native."""

    def url(self, model: str) -> str:
        return endpoint_url(self.endpoint.base_url, model, stream=self.endpoint.streams())

    async def generate(
        self, request: ImageRequest, progress: ProgressCallback | None = None
    ) -> ImageResult:
        """One call; streamed where the endpoint streams, its thoughts told to `progress`."""
        url = self.url(request.model)
        if not self.endpoint.streams():
            return await self._post_and_parse(request, url, build_request, parse_response)
        with tagged(self.endpoint.name):
            body = await in_gil_lane(build_request, request, self.endpoint)
            answer = StreamedAnswer()

            async def on_event(data: bytearray) -> None:
                big = len(data) > SMALL_ANSWER_BYTES
                chunk = await in_gil_lane(stream_chunk, data) if big else stream_chunk(data)
                if chunk is None:
                    return
                for text in answer.add(chunk, data):
                    if progress is not None:
                        await progress(Thinking(text))

            async def finish() -> ParsedAnswer:
                return await in_gil_lane(parse_answer, answer.take())

            parsed = await post_and_stream(self._http, self.endpoint, url, body, on_event, finish)
            images = await self._images(parsed.images)
        return self._result(request, parsed, images)
