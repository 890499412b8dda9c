"""The bot with BLOB_STORE_URL: images live in the S3 bucket (moto's server on 127.0.0.1),
nothing under DATA_DIR/images, and drawing, refining and /export work as on local files."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Awaitable, Callable

import httpx

from tests.e2e.conftest import RunningBot
from tests.e2e.helpers import button, close, db_rows
from tests.fakes.image_api import FakeImageAPI
from tests.fakes.s3_server import S3Bucket
from tests.fakes.telegram_api import FakeTelegram

ALICE, BOB = 2001, 2002


def _key(sha: str) -> str:
    return f"images/{sha[:2]}/{sha[2:4]}/{sha}"


async def test_images_edits_and_export_go_through_the_bucket(
    tg: FakeTelegram,
    upstream: FakeImageAPI,
    s3_bucket: S3Bucket,
    start_bot: Callable[..., Awaitable[RunningBot]],
) -> None:
    bot = await start_bot(**s3_bucket.settings())
    to = lambda chat: lambda c: str(c.params.get("chat_id")) == str(chat)  # noqa: E731

    tg.send_text(ALICE, "a lighthouse", user=tg.user(ALICE))
    tg.send_text(BOB, "a windmill", user=tg.user(BOB))
    await tg.wait_for("sendPhoto", to(ALICE))
    await tg.wait_for("sendPhoto", to(BOB))
    alice_first = next(
        i for i, r in enumerate(upstream.requests) if "lighthouse" in json.dumps(r.json)
    )
    tg.send_text(ALICE, "add a storm", user=tg.user(ALICE))
    await tg.wait_for("sendPhoto", to(ALICE), count=2)

    # The edit sent Alice's first picture, read back from the bucket, to the image API.
    refine = upstream.requests[-1]
    assert "storm" in json.dumps(refine.json)
    assert close(refine.input_images[0].color, upstream.outputs[alice_first])
    shas = {sha for (sha,) in db_rows(bot.settings, "select sha256 from images")}
    assert len(shas) == 3
    assert s3_bucket.keys() == sorted(_key(sha) for sha in shas)
    assert {hashlib.sha256(s3_bucket.read(_key(s))).hexdigest() for s in shas} == shas
    assert not bot.settings.blobs_dir.exists()

    tg.send_text(ALICE, "/export", user=tg.user(ALICE))
    [doc] = await tg.wait_for("sendDocument", to(ALICE))
    with zipfile.ZipFile(io.BytesIO(doc.files["document"])) as archive:
        pictures = {n: archive.read(n) for n in archive.namelist() if n.startswith("images/")}
        document = json.loads(archive.read("data.json"))
    alice = {
        sha
        for (sha,) in db_rows(
            bot.settings,
            "select i.sha256 from images i join jobs j on j.id = i.job_id where j.user_id = ?",
            ALICE,
        )
    }
    assert len(alice) == 2 and alice < shas
    assert {hashlib.sha256(data).hexdigest() for data in pictures.values()} == alice
    assert [job["prompt"] for job in document["jobs"]] == ["a lighthouse", "add a storm"]

    # Bob forgets his data: his picture's object leaves the bucket, Alice's stay.
    bob = shas - alice
    tg.send_text(BOB, "/forget", user=tg.user(BOB))
    [ask] = await tg.wait_for("sendMessage", lambda c: to(BOB)(c) and "forget" in str(c.params))
    tg.press_button(BOB, ask.result["message_id"], button(ask, f"forget:{BOB}"))
    [done] = await tg.wait_for("editMessageText", to(BOB))
    assert "1 picture(s) deleted" in done.params["text"]
    assert s3_bucket.keys() == sorted(_key(sha) for sha in alice)
    assert len(bob) == 1


async def test_a_bucket_that_refuses_the_upload_fails_the_job_cleanly(
    tg: FakeTelegram,
    upstream: FakeImageAPI,
    s3_bucket: S3Bucket,
    start_bot: Callable[..., Awaitable[RunningBot]],
) -> None:
    """The bucket is not there: the user hears of a failure, the job row says failed with no
    image rows, no secret is in what was written, and the next drawing in another chat works
    once the bucket exists."""
    settings = s3_bucket.settings()
    missing = settings["blob_store_url"].replace("s3://bot-", "s3://gone-")
    bot = await start_bot(**{**settings, "blob_store_url": missing})
    to = lambda chat: lambda c: str(c.params.get("chat_id")) == str(chat)  # noqa: E731

    tg.send_text(ALICE, "a lighthouse", user=tg.user(ALICE))
    [told] = await tg.wait_for(
        "sendMessage", lambda c: to(ALICE)(c) and "lighthouse" not in str(c.params)
    )
    assert "Something went wrong on my side" in told.params["text"]
    assert tg.calls_of("sendPhoto") == []
    [(status, detail)] = db_rows(bot.settings, "select status, error_detail from jobs")
    assert status == "failed"
    assert db_rows(bot.settings, "select count(*) from images") == [(0,)]
    for secret in (settings["s3_secret_access_key"], settings["s3_access_key_id"]):
        assert secret not in (detail or "") and secret not in str(told.params)
    assert s3_bucket.keys() == []

    late = S3Bucket(s3_bucket.endpoint, missing.removeprefix("s3://").split("/")[0], "images")
    async with httpx.AsyncClient(trust_env=False) as client:
        (await client.put(f"{late.endpoint}/{late.name}")).raise_for_status()
    tg.send_text(BOB, "a windmill", user=tg.user(BOB))
    await tg.wait_for("sendPhoto", to(BOB))
    [(sha,)] = db_rows(bot.settings, "select sha256 from images")
    assert late.keys() == [_key(sha)]
