"""What the webhook takes as an update, and the path it serves."""

from __future__ import annotations

import pytest

from bot.webhook import WebhookConfig, update_id_of


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'"a string"',
        b"7",
        b"{}",
        b'{"update_id": "7"}',
        b'{"update_id": 7.0}',
        b'{"update_id": true}',
        b'{"update_id": null, "message": {}}',
    ],
)
def test_a_body_that_is_no_update_is_refused(body: bytes) -> None:
    assert update_id_of(body) is None


def test_an_update_gives_its_id_and_object() -> None:
    body = b'{"update_id": 700000001, "message": {"text": "\\u4e00\\u53ea\\u732b"}}'
    expected = {"update_id": 700000001, "message": {"text": "一只猫"}}
    assert update_id_of(body) == (700000001, expected)


@pytest.mark.parametrize(
    ("url", "path"),
    [
        ("https://bot.example.org/tg/updates", "/tg/updates"),
        ("https://bot.example.org", "/"),
        ("https://bot.example.org:8443/hook?x=1", "/hook"),
    ],
)
def test_the_path_served_is_the_urls(url: str, path: str) -> None:
    assert WebhookConfig(url, "secret", "0.0.0.0:8080").path == path
