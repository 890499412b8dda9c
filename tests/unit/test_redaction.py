"""bot.redaction: one function masks every registered secret, in every form a relay echoes."""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from bot import redaction
from bot.config import load_settings
from bot.logs import RedactingFormatter
from bot.providers.errors import ProviderError, ProviderErrorKind
from bot.providers.factory import endpoints_from_settings, register_secrets

KEY = "relayKey/9f8e7d6c5b4a+3210=Zq"
TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


def test_a_registered_key_is_masked_whole_encoded_escaped_and_in_part() -> None:
    redaction.register([KEY])
    for form in (KEY, quote(KEY, safe=""), quote_plus(KEY), KEY.replace("/", "\\/")):
        assert redaction.redact(f"bad token <{form}>!") == "bad token <***>!"
    assert redaction.redact(f"prefix {KEY[:10]}...") == "prefix ***..."
    assert redaction.redact(f"glued{KEY[4:20]}glued") == "glued***glued"


def test_short_pieces_and_plain_words_are_left_alone() -> None:
    redaction.register([KEY, "abc"])
    assert redaction.redact("relay said abc, key" + KEY[:5]) == "relay said abc, key" + KEY[:5]


def test_unregistered_shapes_are_masked() -> None:
    text = f"url /bot{TOKEN}/getMe Bearer zzz-123 sk-abcdef AIzaSyA1234567890abc key=hunter2"
    masked = redaction.redact(text)
    for secret in (TOKEN, "zzz-123", "sk-abcdef", "AIzaSyA1234567890abc", "hunter2"):
        assert secret not in masked


def test_a_bot_tokens_public_id_alone_is_not_masked() -> None:
    redaction.register([TOKEN, TOKEN.partition(":")[2]])
    assert redaction.redact("user 123456789 wrote") == "user 123456789 wrote"
    assert "AAHdqTcv" not in redaction.redact("echo AAHdqTcvCH1vG")


def test_provider_errors_and_log_lines_are_masked() -> None:
    redaction.register([KEY])
    err = ProviderError(ProviderErrorKind.AUTH, f"HTTP 401: invalid {KEY}")
    assert KEY not in err.detail and KEY not in str(err)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "got %s", (quote(KEY),), None)
    line = RedactingFormatter("%(message)s", []).format(record)
    assert line == "got ***"


def test_reset_forgets() -> None:
    redaction.register([KEY])
    redaction.reset()
    assert redaction.redact(f"x {KEY[:10]}") == f"x {KEY[:10]}"


def test_every_endpoint_of_a_providers_file_and_the_token_are_registered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = "inline-key-0123456789abcdef", "env-key-fedcba9876543210"
    monkeypatch.setenv("SECOND_KEY", second)
    providers = tmp_path / "providers.toml"
    providers.write_text(
        '[[endpoint]]\nname = "a"\ndialect = "openai-chat"\nbase_url = "https://a/v1"\n'
        f'api_key = "{first}"\n'
        '[[endpoint]]\nname = "b"\ndialect = "gemini"\nbase_url = "https://b"\n'
        'api_key_env = "SECOND_KEY"\nauth = "query-key"\n'
    )
    settings = load_settings(
        _env_file=None, telegram_bot_token=TOKEN, image_providers_file=str(providers)
    )
    register_secrets(settings, endpoints_from_settings(settings))
    text = f"a said {first}; b said ?key={quote(second)}; bot /bot{TOKEN}/getMe; {TOKEN[10:30]}"
    masked = redaction.redact(text)
    for secret in (first, second, TOKEN, TOKEN[10:30]):
        assert secret not in masked, masked


def test_json_log_lines_parse_and_mask_secrets_in_message_and_traceback() -> None:
    import io
    import json
    import logging

    from bot.logs import formatter

    secret = "sk-json-lines-secret-0123456789"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter("json", [secret]))
    logger = logging.getLogger("tests.json_lines")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("relay said %s", f'{{"key": "{secret}"}}')
        try:
            raise RuntimeError(f"refused Authorization: Bearer {secret}")
        except RuntimeError:
            logger.exception("call failed")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    first, second = (json.loads(line) for line in lines)
    assert len(lines) == 2
    assert (first["level"], first["logger"]) == ("WARNING", "tests.json_lines")
    assert first["message"].startswith("relay said ") and "exception" not in first
    assert first["time"].endswith("+00:00")
    assert second["message"] == "call failed"
    assert "RuntimeError: refused" in second["exception"]
    assert "Traceback" in second["exception"]
    assert secret not in stream.getvalue() and secret[3:15] not in stream.getvalue()
