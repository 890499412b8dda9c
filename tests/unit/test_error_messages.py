"""The words and the Retry button each relay failure gets, in both languages."""

from __future__ import annotations

import pytest

from bot.providers.errors import EMPTY_RESPONSE, ProviderError
from bot.providers.errors import ProviderErrorKind as K
from bot.services.errors import note_failed_job
from bot.telegram.errors import _keyboard_for, message_for


def _err(
    kind: K, *, reason: str | None = None, retry_after: float | None = None, job_id: int | None = 7
) -> ProviderError:
    exc = ProviderError(kind, "detail", reason=reason, retry_after=retry_after)
    if job_id is not None:
        note_failed_job(exc, job_id)
    return exc


@pytest.mark.parametrize(("lang", "words"), [("en", "about 35 s"), ("zh", "约 35 秒")])
def test_a_long_wait_names_its_seconds_rounded_up(lang: str, words: str) -> None:
    assert words in message_for(_err(K.RETRY_LATER, retry_after=34.4), lang)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_new_api_failures_each_have_their_own_words(lang: str) -> None:
    blocked = message_for(_err(K.BLOCKED, reason="PROHIBITED_CONTENT"), lang)
    filtered = message_for(_err(K.BLOCKED, reason="content_filter"), lang)
    empty = message_for(_err(K.SERVER, reason=EMPTY_RESPONSE), lang)
    server = message_for(_err(K.SERVER), lang)
    assert len({blocked, filtered, empty, server}) == 4


@pytest.mark.parametrize(
    ("exc", "button"),
    [
        (_err(K.NO_IMAGE), True),
        (_err(K.RETRY_LATER, retry_after=40), True),
        (_err(K.SERVER, reason=EMPTY_RESPONSE), True),
        (_err(K.BLOCKED, reason="content_filter"), True),
        (_err(K.BLOCKED, reason="SAFETY"), True),  # filters differ from try to try
        (_err(K.AUTH), True),  # once the owner has fixed the key
        (_err(K.NO_IMAGE, job_id=None), False),  # no job to replay
    ],
)
def test_a_retry_button_under_every_failed_job(exc: ProviderError, button: bool) -> None:
    markup = _keyboard_for(exc, "en")
    assert (markup is not None) == button
    if markup is not None:
        assert markup.inline_keyboard[0][0].callback_data == "regen:7"
