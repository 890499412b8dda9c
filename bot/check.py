"""`python -m bot check`: one tiny generation per configured endpoint, printed as a table."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from bot import imaging, redaction
from bot.config import Settings
from bot.providers.base import Endpoint, ImageRequest
from bot.providers.errors import ProviderError
from bot.providers.factory import (
    endpoints_from_settings,
    make_http_client,
    provider_for,
    register_secrets,
    url_policy,
)
from bot.providers.urlguard import UrlPolicy

PROBE_PROMPT = "Generate an image: a small red circle on a white background, flat, minimal."


@dataclass
class CheckRow:
    endpoint: str
    dialect: str
    model: str
    outcome: str
    seconds: float


async def check_endpoint(
    endpoint: Endpoint, model: str, policy: UrlPolicy | None = None
) -> CheckRow:
    started = time.monotonic()
    async with make_http_client() as http:
        provider = provider_for(endpoint, http, policy)
        try:
            result = await provider.generate(ImageRequest(prompt=PROBE_PROMPT, model=model))
            if result.images:
                info = await imaging.avalidate_output(result.images[0].data)
                outcome = f"ok ({info.width}x{info.height} {info.mime})"
            else:
                outcome = f"no image; model said: {(result.text or '').strip()[:60]!r}"
        except ProviderError as exc:
            outcome = f"{exc.kind.value}: {exc.detail[:80]}"
        except imaging.ImageInputError as exc:
            outcome = f"bad image: {exc.code}"
    outcome = redaction.redact(outcome)  # a relay's words may echo the key
    return CheckRow(endpoint.name, endpoint.dialect, model, outcome, time.monotonic() - started)


async def run_checks(settings: Settings) -> list[CheckRow]:
    jobs = []
    endpoints = endpoints_from_settings(settings)
    register_secrets(settings, endpoints)
    policy = url_policy(settings)
    for endpoint in endpoints:
        for model in endpoint.models or (settings.image_model,):
            jobs.append(check_endpoint(endpoint, model, policy))
    return list(await asyncio.gather(*jobs))


def format_table(rows: list[CheckRow]) -> str:
    head = ("endpoint", "dialect", "model", "result", "seconds")
    cells = [head] + [(r.endpoint, r.dialect, r.model, r.outcome, f"{r.seconds:.1f}") for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(len(head))).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(settings: Settings) -> int:
    rows = asyncio.run(run_checks(settings))
    print(redaction.redact(format_table(rows)))
    return 0 if all(r.outcome.startswith("ok") for r in rows) else 1
