"""Typed upstream errors. Every failure that leaves `bot.providers` is a ProviderError."""

from __future__ import annotations

from enum import StrEnum

from bot.redaction import redact


class ProviderErrorKind(StrEnum):
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    RATE_LIMITED = "rate_limited"
    SERVER = "server"
    BAD_REQUEST = "bad_request"
    AUTH = "auth"
    NOT_FOUND = "not_found"
    MODEL_RETIRED = "model_retired"  # the upstream says this model is gone or unknown
    BLOCKED = "blocked"
    NO_IMAGE = "no_image"
    BAD_RESPONSE = "bad_response"
    QUOTA_EXHAUSTED = "quota_exhausted"
    # Every endpoint asked for a wait longer than a job waits (`retry_after` holds it).
    RETRY_LATER = "retry_later"


# The reason of new-api's HTTP 500 for a Gemini answer without candidates: a busy upstream.
EMPTY_RESPONSE = "empty_response"

TRANSIENT_KINDS = frozenset(
    {
        ProviderErrorKind.TIMEOUT,
        ProviderErrorKind.CONNECTION,
        ProviderErrorKind.RATE_LIMITED,
        ProviderErrorKind.SERVER,
    }
)


class ProviderError(Exception):
    """An upstream call failed.

    `detail` is for logs and admins (never holds the API key); `reason` is a provider code
    such as a Gemini finishReason/blockReason; `retry_after` is seconds when the upstream said.
    `answered`: raised after the upstream answered the generation with 2xx, so the call may be
    billed (some relays bill every 200, image or not).
    """

    def __init__(
        self,
        kind: ProviderErrorKind,
        detail: str,
        *,
        status: int | None = None,
        reason: str | None = None,
        retry_after: float | None = None,
        endpoint: str = "",
        answered: bool = False,
    ) -> None:
        detail = redact(detail)  # a relay may echo a key anywhere: masked before it can travel
        super().__init__(f"{kind.value}: {detail}")
        self.kind = kind
        self.detail = detail
        self.status = status
        self.reason = reason
        self.retry_after = retry_after
        self.endpoint = endpoint
        # Set by the pool on MODEL_RETIRED: the model asked for and the one to use instead.
        self.model: str | None = None
        self.successor: str | None = None
        self.answered = answered

    @property
    def transient(self) -> bool:
        return self.kind in TRANSIENT_KINDS
