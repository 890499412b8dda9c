"""An answer cannot make the bot fetch from inside the operator's network (no SSRF).

The fake image API (the configured endpoint, on 127.0.0.1) answers with an image link that
leads elsewhere: to a second tiny server on another loopback port, directly, by a redirect,
by the name `localhost`, as IPv4-mapped IPv6, or to the cloud metadata address (with the
second server set as HTTP proxy, so that even a bot that tried would not leave the machine).
No request reaches the second server, the user hears the usual "couldn't use" message, the
job is recorded as failed, and the next request in another chat works. A host listed in
IMAGE_URL_ALLOWED_HOSTS is fetched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import db_rows, mean
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.image_host import COLOR, ImageHost
from tests.fakes.telegram_api import FakeTelegram

StartBot = Callable[..., Awaitable[RunningBot]]
ASKER, OTHER = 1001, 1002  # two chats, two users

# how the answer leads away: (dialect, link the answer names, where its /files/ link redirects)
ATTEMPTS = {
    "markdown link to another port": ("openai-chat", "{host}/img.png", None),
    "url field to another port": ("openai-images", "{host}/img.png", None),
    "redirect to another port": ("openai-chat", None, "{host}/img.png"),
    "localhost on another port": ("openai-chat", "http://localhost:{port}/img.png", None),
    "IPv4-mapped IPv6 loopback": ("openai-chat", "http://[::ffff:127.0.0.1]:{port}/x.png", None),
    "cloud metadata address": ("openai-chat", "http://169.254.169.254/latest/meta-data/", None),
    "redirect to file:": ("openai-chat", None, "file:///etc/passwd"),
    "redirect to ftp:": ("openai-chat", None, "ftp://127.0.0.1:{port}/img.png"),
}


@pytest.fixture
async def host() -> AsyncIterator[ImageHost]:
    server = ImageHost()
    await server.start()
    yield server
    await server.stop()


def user(uid: int) -> dict[str, object]:
    return {"id": uid, "is_bot": False, "first_name": f"u{uid}"}


@pytest.mark.parametrize("attempt", sorted(ATTEMPTS))
async def test_an_image_link_into_the_local_network_is_refused(
    attempt: str,
    tg: FakeTelegram,
    upstream: FakeImageAPI,
    host: ImageHost,
    start_bot: StartBot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dialect, link, redirect = ATTEMPTS[attempt]
    # Anything not on 127.0.0.1 goes to the second server: no test leaves the machine.
    monkeypatch.setenv("HTTP_PROXY", host.root)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost,::1")
    running = await start_bot(image_api_dialect=dialect)
    upstream.answer_shape, upstream.images_answer = "markdown-url", "url"
    upstream.link_to = link.format(host=host.root, port=host.port) if link else None
    upstream.files_redirect_to = (
        redirect.format(host=host.root, port=host.port) if redirect else None
    )
    tg.send_text(ASKER, "print this link as an image", user=user(ASKER))
    await tg.wait_for(
        "sendMessage",
        lambda c: c.params.get("chat_id") == ASKER and "couldn't use" in c.params.get("text", ""),
        timeout=20,
    )
    assert host.hits == []
    assert not tg.calls_of("sendPhoto")
    [(status, code)] = db_rows(running.settings, "select status, error_code from jobs")
    assert (status, code) == ("failed", "bad_response")

    upstream.link_to = upstream.files_redirect_to = None
    tg.send_text(OTHER, "a paper boat", user=user(OTHER))
    [photo] = await tg.wait_for("sendPhoto", timeout=20)
    assert photo.params["chat_id"] == OTHER and host.hits == []


async def test_an_allowed_host_is_fetched(
    tg: FakeTelegram, upstream: FakeImageAPI, host: ImageHost, start_bot: StartBot
) -> None:
    running = await start_bot(image_url_allowed_hosts=f"example.invalid, 127.0.0.1:{host.port}")
    upstream.answer_shape = "markdown-url"
    upstream.link_to = f"{host.root}/img.png"
    tg.send_text(ASKER, "from the office NAS", user=user(ASKER))
    [photo] = await tg.wait_for("sendPhoto", timeout=20)
    assert mean(photo.files["photo"]) == COLOR
    assert [h.target for h in host.hits] == ["/img.png"]
    [(status,)] = db_rows(running.settings, "select status from jobs")
    assert status == "succeeded"


async def test_a_redirect_loop_is_cut_short(
    tg: FakeTelegram, upstream: FakeImageAPI, host: ImageHost, start_bot: StartBot
) -> None:
    """Redirects within the endpoint's origin are followed, but only so many."""
    running = await start_bot()
    upstream.answer_shape = "markdown-url"
    upstream.files_redirect_to = f"{upstream.root}/files/again.png"  # to itself, for ever
    tg.send_text(ASKER, "a lantern", user=user(ASKER))
    await tg.wait_for(
        "sendMessage", lambda c: "couldn't use" in c.params.get("text", ""), timeout=20
    )
    [(status, detail)] = db_rows(running.settings, "select status, error_detail from jobs")
    assert status == "failed" and "redirected more than 5 times" in detail
