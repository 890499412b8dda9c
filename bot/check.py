"""`python -m bot check`: is the image endpoint set up right, and how should it be?

- `check` alone: one tiny generation per configured endpoint, printed as a table.
- `check --dry-run`: the models each configured endpoint lists; nothing billable is sent.
- `check --base-url URL` (key from `--key` or `IMAGE_API_KEY`): finds out how to talk to an
  endpoint knowing nothing else. It lists the models (free: gemini `GET /v1beta/models`, openai
  `GET /v1/models`) in each of the four auth styles, then, for each of the three dialects, sends
  one tiny generation with an auth style that works (at most one billable call per dialect,
  each announced before it goes), and prints what works, the models listed, and the lines to
  paste into `.env`. With `--dry-run` it stops after the lists. The key is never printed.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

from bot import imaging, redaction
from bot.config import Settings
from bot.providers.base import AuthStyle, DialectName, Endpoint, ImageRequest
from bot.providers.errors import ProviderError, ProviderErrorKind
from bot.providers.extract import Body, answer_object
from bot.providers.factory import (
    endpoints_from_settings,
    make_http_client,
    provider_for,
    register_secrets,
    url_policy,
)
from bot.providers.http import get_and_read
from bot.providers.urlguard import UrlPolicy

PROBE_PROMPT = "Generate an image: a small red circle on a white background, flat, minimal."
LIST_TIMEOUT = 20.0
PROBE_TIMEOUT = 180.0
SHOWN_MODELS = 30  # a long list (OpenRouter has hundreds) shows its image models, then a count
# The order dialects are preferred in when several work: native history first.
DIALECTS: tuple[DialectName, ...] = ("gemini", "openai-chat", "openai-images")
# Auth styles in the order each family is most likely to use them.
AUTH_ORDER: dict[str, tuple[AuthStyle, ...]] = {
    "gemini": ("x-goog-api-key", "bearer", "query-key", "raw"),
    "openai": ("bearer", "raw", "x-goog-api-key", "query-key"),
}
_VERSION_TAIL = re.compile(r"/v1(beta)?/?$")

Say = Callable[[str], None]


# --- configured endpoints ---------------------------------------------------------------


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
        outcome, _ = await _generate(http, endpoint, model, policy)
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


def format_table(rows: Sequence[Sequence[str]], head: Sequence[str]) -> str:
    cells = [list(head)] + [list(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    lines = ["  ".join(c[i].ljust(widths[i]) for i in range(len(head))).rstrip() for c in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def check_table(rows: list[CheckRow]) -> str:
    return format_table(
        [(r.endpoint, r.dialect, r.model, r.outcome, f"{r.seconds:.1f}") for r in rows],
        ("endpoint", "dialect", "model", "result", "seconds"),
    )


async def list_configured(settings: Settings, say: Say) -> bool:
    """--dry-run for the configured endpoints: the models each lists, nothing billable."""
    endpoints = endpoints_from_settings(settings)
    register_secrets(settings, endpoints)
    found = False
    async with make_http_client() as http:
        for endpoint in endpoints:
            family = "gemini" if endpoint.dialect == "gemini" else "openai"
            base = gemini_root(endpoint.base_url) if family == "gemini" else endpoint.base_url
            listing = await list_models(http, family, base, endpoint.api_key, endpoint.auth_style)
            say(f"{endpoint.name} ({endpoint.dialect}, {endpoint.auth_style}): {listing.said}")
            if listing.models is not None:
                found = True
                say("  " + shown_models(listing.models))
    return found


def main(settings: Settings, *, dry_run: bool = False, say: Say = print) -> int:
    def safe(text: str) -> None:
        say(redaction.redact(text))

    if dry_run:
        return 0 if asyncio.run(list_configured(settings, safe)) else 1
    rows = asyncio.run(run_checks(settings))
    safe(check_table(rows))
    return 0 if all(r.outcome.startswith("ok") for r in rows) else 1


# --- discovery from a base URL and a key --------------------------------------------------


def gemini_root(base_url: str) -> str:
    """Where `/v1beta/models` hangs: the URL without a trailing /v1 or /v1beta."""
    return _VERSION_TAIL.sub("", base_url.rstrip("/"))


def openai_base(base_url: str) -> str:
    """The openai base ends in a version (`/v1`, or `/api/v1` at OpenRouter): add /v1 if not."""
    url = base_url.rstrip("/")
    if url.endswith("/v1beta"):
        return url.removesuffix("beta")
    return url if re.search(r"/v\d+$", url) else f"{url}/v1"


@dataclass
class Listing:
    family: str  # gemini | openai
    auth: AuthStyle
    url: str
    models: list[str] | None  # None: the list could not be had
    said: str
    failed: ProviderErrorKind | None = None


def _names(family: str, raw: Body) -> list[str]:
    answer = answer_object(raw)
    items = answer.get("models" if family == "gemini" else "data")
    if not isinstance(items, list):
        raise ProviderError(ProviderErrorKind.BAD_RESPONSE, "the answer holds no model list")
    key = "name" if family == "gemini" else "id"
    names = [i.get(key) for i in items if isinstance(i, dict)]
    return [n.removeprefix("models/") for n in names if isinstance(n, str) and n]


def _probe_endpoint(
    dialect: DialectName, base_url: str, key: str, auth: AuthStyle, timeout: float
) -> Endpoint:
    return Endpoint(
        name=f"{dialect}/{auth}",
        dialect=dialect,
        base_url=base_url,
        api_key=key,
        auth_style=auth,
        timeout=timeout,
    )


async def list_models(
    http: httpx.AsyncClient, family: str, base: str, key: str, auth: AuthStyle
) -> Listing:
    """One free `GET .../models` in one auth style."""
    dialect: DialectName = "gemini" if family == "gemini" else "openai-chat"
    url = f"{base}/v1beta/models" if family == "gemini" else f"{base}/models"
    endpoint = _probe_endpoint(dialect, base, key, auth, LIST_TIMEOUT)

    async def read(raw: Body) -> list[str]:
        return _names(family, raw)

    try:
        models = await get_and_read(http, endpoint, url, read)
    except ProviderError as exc:
        return Listing(family, auth, url, None, _why(exc), exc.kind)
    return Listing(family, auth, url, models, f"ok, {len(models)} models")


def _why(exc: ProviderError) -> str:
    words = {
        ProviderErrorKind.AUTH: "key refused in this style",
        ProviderErrorKind.NOT_FOUND: "not found here",
    }
    said = words.get(exc.kind, exc.kind.value)
    return f"{said} ({exc.detail[:80]})"


async def _generate(
    http: httpx.AsyncClient, endpoint: Endpoint, model: str, policy: UrlPolicy | None
) -> tuple[str, ProviderError | None]:
    """One tiny generation: ('ok (...)' or why not, the error if any)."""
    provider = provider_for(endpoint, http, policy)
    try:
        result = await provider.generate(ImageRequest(prompt=PROBE_PROMPT, model=model))
        if not result.images:
            return f"ok, but no image; model said: {(result.text or '').strip()[:60]!r}", None
        info = await imaging.avalidate_output(result.images[0].data)
        return f"ok ({info.width}x{info.height} {info.mime})", None
    except ProviderError as exc:
        return redaction.redact(f"{exc.kind.value}: {exc.detail[:80]}"), exc
    except imaging.ImageInputError as exc:
        return f"bad image: {exc.code}", None


@dataclass
class Probe:
    dialect: DialectName
    auth: AuthStyle
    model: str
    outcome: str
    works: bool


@dataclass
class Discovery:
    listings: list[Listing] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    gemini_base: str = ""
    openai_base: str = ""

    def listed(self, family: str | None = None) -> list[str]:
        """Every model listed (by `family`, if given), each once, in order."""
        seen: dict[str, None] = {}
        for listing in self.listings:
            if listing.models and (family is None or listing.family == family):
                seen.update(dict.fromkeys(listing.models))
        return list(seen)

    def listing_auths(self, family: str) -> list[AuthStyle]:
        return [x.auth for x in self.listings if x.family == family and x.models is not None]

    def absent(self, family: str) -> bool:
        """The family's model list is not found in any style, while the other one's is."""
        mine = [x for x in self.listings if x.family == family]
        return bool(mine and self.listed()) and all(
            x.failed is ProviderErrorKind.NOT_FOUND for x in mine
        )

    def best(self) -> Probe | None:
        working = [p for p in self.probes if p.works]
        return min(working, key=lambda p: DIALECTS.index(p.dialect)) if working else None


def _family(dialect: DialectName) -> str:
    return "gemini" if dialect == "gemini" else "openai"


def pick_model(listed: Sequence[str], wanted: str | None = None) -> str:
    """The model to probe: the one asked for, else the bot's default if listed (also under a
    vendor prefix such as `google/`), else the first listed image model, else the default."""
    if wanted:
        return wanted
    default = str(Settings.model_fields["image_model"].default)
    for name in listed:
        if name == default or name.endswith(f"/{default}"):
            return name
    images = [n for n in listed if "image" in n.lower()]
    return images[0] if images else default


def shown_models(models: Sequence[str]) -> str:
    if len(models) <= SHOWN_MODELS:
        return ", ".join(models) or "(none)"
    images = [m for m in models if "image" in m.lower()][:SHOWN_MODELS]
    return f"{', '.join(images) or '(no image models)'} (and {len(models) - len(images)} more)"


async def discover(
    base_url: str,
    key: str,
    *,
    model: str | None = None,
    dry_run: bool = False,
    say: Say = print,
    http: httpx.AsyncClient | None = None,
) -> Discovery:
    """Lists, then (unless `dry_run`) one announced generation per dialect that answers."""
    redaction.register([key])
    found = Discovery(gemini_base=gemini_root(base_url), openai_base=openai_base(base_url))
    async with contextlib.AsyncExitStack() as stack:
        client = http if http is not None else await stack.enter_async_context(make_http_client())
        say("Listing models (free):")
        for family, base in (("gemini", found.gemini_base), ("openai", found.openai_base)):
            for auth in AUTH_ORDER[family]:
                listing = await list_models(client, family, base, key, auth)
                found.listings.append(listing)
                say(f"  GET {listing.url}  auth {auth}: {listing.said}")
        if dry_run:
            return found
        policy = UrlPolicy()
        for dialect in DIALECTS:
            probe = await _probe_dialect(client, found, dialect, key, model, policy, say)
            if probe is not None:
                found.probes.append(probe)
    return found


async def _probe_dialect(
    http: httpx.AsyncClient,
    found: Discovery,
    dialect: DialectName,
    key: str,
    wanted: str | None,
    policy: UrlPolicy,
    say: Say,
) -> Probe | None:
    """At most one generation that reaches the model: auth styles whose listing worked come
    first (or all, if none did); a refused key moves to the next style, costing nothing."""
    family = _family(dialect)
    model = pick_model(found.listed(family) or found.listed(), wanted)
    if found.absent(family):
        say(f"Not trying {dialect}: this endpoint has no {family} model list")
        return Probe(dialect, AUTH_ORDER[family][0], model, "not served here", works=False)
    auths = found.listing_auths(family) or list(AUTH_ORDER[family])
    base = found.gemini_base if family == "gemini" else found.openai_base
    last: Probe | None = None
    for auth in auths:
        say(f"Sending one tiny generation (may be billed): {dialect}, auth {auth}, model {model}")
        endpoint = _probe_endpoint(dialect, base, key, auth, PROBE_TIMEOUT)
        outcome, error = await _generate(http, endpoint, model, policy)
        say(f"  {outcome}")
        last = Probe(dialect, auth, model, outcome, works=error is None)
        if error is None or error.kind is not ProviderErrorKind.AUTH:
            return last
    return last


def env_lines(found: Discovery, *, dry_run: bool) -> list[str]:
    """The settings to paste: the best working combination (by its list alone if dry)."""
    best = found.best()
    if best is not None:
        dialect, auth, model = best.dialect, best.auth, best.model
    elif dry_run and (found.listing_auths("gemini") or found.listing_auths("openai")):
        family = "gemini" if found.listing_auths("gemini") else "openai"
        dialect = "gemini" if family == "gemini" else "openai-chat"
        auth = found.listing_auths(family)[0]
        model = pick_model(found.listed(family))
    else:
        return []
    base = found.gemini_base if dialect == "gemini" else found.openai_base
    return [
        f"IMAGE_API_DIALECT={dialect}",
        f"IMAGE_API_BASE_URL={base}",
        "IMAGE_API_KEY=...  (the key you gave)",
        f"IMAGE_API_AUTH={auth}",
        f"IMAGE_MODEL={model}",
    ]


def report(found: Discovery, *, dry_run: bool) -> str:
    lines = ["", "Models the endpoint lists: " + shown_models(found.listed())]
    if found.probes:
        rows = [
            (p.dialect, p.auth, p.model, "works" if p.works else p.outcome) for p in found.probes
        ]
        lines += ["", format_table(rows, ("dialect", "auth", "model", "result"))]
    elif not dry_run:
        lines.append("No dialect answered a generation.")
    paste = env_lines(found, dry_run=dry_run)
    if paste:
        title = (
            "Paste into .env"
            + (
                " (from the model lists alone: run without --dry-run to try a generation)"
                if dry_run and not found.probes
                else ""
            )
            + ":"
        )
        lines += ["", title, *paste]
    else:
        lines += ["", "Nothing worked with this URL and key: check both."]
    return "\n".join(lines)


def discover_main(
    base_url: str, key: str, *, model: str | None = None, dry_run: bool = False, say: Say = print
) -> int:
    """`python -m bot check --base-url ...`: exit 0 when some combination works."""
    if not key:
        say("error: no key: pass --key or set IMAGE_API_KEY")
        return 2
    redaction.register([key])

    def safe(text: str) -> None:
        say(redaction.redact(text, [key]))

    found = asyncio.run(discover(base_url, key, model=model, dry_run=dry_run, say=safe))
    safe(report(found, dry_run=dry_run))
    if dry_run:
        return 0 if found.listed() else 1
    return 0 if found.best() is not None else 1
