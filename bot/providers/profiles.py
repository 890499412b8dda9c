"""What each image model can do: the one place that knows models by name.

A `ModelProfile` per model family says how many input images it takes, which aspect ratios
and sizes, on which dialects one call can ask for `n` images or carry real multi-turn
history, and Google's list price per image. `profile_for(model, endpoint)` finds it: the exact
name, then the name without Google's suffixes (`-preview`, dates, `-latest`) or a relay's
(`-hd`: same model, the relay's own price), then a prefix family, else a safe default (logged
once per name). A providers file can override a profile per endpoint (`[endpoint.profile]`).

Facts (PROTOCOLS.md, and each family's comment below): GI: 2.5 Flash Image "works best with
up to 3 images", the Gemini 3 image models up to 14; imageSize is documented for the Gemini 3
image models only (2.5 is fixed at 1024 px); 3.1 Flash Image adds a 512 px tier and the ratios
1:4 4:1 1:8 8:1; Google Search grounding (`tools: [{"googleSearch": {}}]`) is documented for the
Gemini 3 image models. Image models ignore or refuse candidateCount, so only the OpenAI Images
dialect (S2: `n` 1-10) takes `n`; real history and grounding need the gemini dialect (chat
relays drop thought signatures and document no search tool).

A retired model names its successor (`successor_of`): the admins are told which one to set.

To add a model, add one `ModelProfile` to `KNOWN`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import cast

from bot.providers.base import DialectName, Endpoint

log = logging.getLogger(__name__)

#: The ten ratios of GI's table, which every Gemini image model takes.
CLASSIC_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
#: The extreme ratios 3.1 Flash Image adds (Google's AspectRatio enum, GI for 3.1).
WIDE_RATIOS = ("1:4", "4:1", "1:8", "8:1")
#: Every aspect ratio a chat can choose; a profile takes these or fewer.
RATIOS = (*CLASSIC_RATIOS, *WIDE_RATIOS)
#: Every image size a chat can choose, as Google spells them: uppercase K (GI: lowercase is
#: rejected); "512" is 3.1 Flash Image's 0.5K tier.
SIZES = ("512", "1K", "2K", "4K")
#: What people also write for a size (`--size 0.5k`).
SIZE_ALIASES = MappingProxyType({"0.5K": "512", "512PX": "512", "1024": "1K"})
_NO_PRICES: Mapping[str, float] = MappingProxyType({})


@dataclass(frozen=True)
class ModelProfile:
    """One model family. The defaults are the safe profile of a model nobody described."""

    family: str
    max_input_images: int = 3
    aspect_ratios: tuple[str, ...] = CLASSIC_RATIOS
    image_sizes: tuple[str, ...] = ()
    n_dialects: frozenset[DialectName] = frozenset()
    history_dialects: frozenset[DialectName] = frozenset()
    price: float | None = None  # USD per image at any size not in size_prices
    size_prices: Mapping[str, float] = field(default_factory=lambda: _NO_PRICES)
    # S2's /images endpoints document `aspect_ratio` for this family only (Kling), not Gemini.
    ratio_in_images_body: bool = False
    prefix: bool = False  # also matches names that start with `family`
    # Thinks before it draws and can send thought summaries (GI: 3 Pro Image's "thinking").
    thinks: bool = False
    grounding_dialects: frozenset[DialectName] = frozenset()  # Google Search grounding
    successor: str | None = None  # the model to use once this one is retired

    def grounding(self, dialect: str) -> bool:
        return dialect in self.grounding_dialects

    def supports_n(self, dialect: str) -> bool:
        return dialect in self.n_dialects

    def real_history(self, dialect: str) -> bool:
        return dialect in self.history_dialects

    def sendable(
        self, aspect_ratio: str | None, image_size: str | None
    ) -> tuple[str | None, str | None]:
        """(ratio, size) a dialect may send: what this model takes, else nothing (its default)."""
        size = size_named(image_size) if image_size else None
        return (
            aspect_ratio if aspect_ratio in self.aspect_ratios else None,
            size if size in self.image_sizes else None,
        )

    def price_for(self, image_size: str | None) -> float | None:
        if image_size is not None and image_size in self.size_prices:
            return self.size_prices[image_size]
        return self.price


#: What a model nobody described gets: few input images, no sizes, no n, no real history.
SAFE_DEFAULT = ModelProfile(family="")

_IMAGES: frozenset[DialectName] = frozenset({"openai-images"})
_GEMINI: frozenset[DialectName] = frozenset({"gemini"})
# https://ai.google.dev/gemini-api/docs/image-generation (2.5 Flash Image: up to 3 input
# images, the ten classic ratios, no imageSize); https://ai.google.dev/gemini-api/docs/pricing
# ($0.039 per image); https://ai.google.dev/gemini-api/docs/deprecations (shutdown 2026-10-02).
_FLASH_25 = ModelProfile(
    "gemini-2.5-flash-image",
    max_input_images=3,
    n_dialects=_IMAGES,
    history_dialects=_GEMINI,
    price=0.039,
    successor="gemini-3.1-flash-image",
)
# https://ai.google.dev/gemini-api/docs/image-generation (3 Pro Image: up to 14 input images,
# 6 of them objects at high fidelity; imageSize 1K/2K/4K; thinking with thought signatures to
# send back; grounding with Google Search); https://ai.google.dev/gemini-api/docs/pricing
# ($0.134 at 1K and 2K, $0.24 at 4K).
_PRO_3 = ModelProfile(
    "gemini-3-pro-image",
    max_input_images=14,
    image_sizes=("1K", "2K", "4K"),
    n_dialects=_IMAGES,
    history_dialects=_GEMINI,
    price=0.134,
    size_prices=MappingProxyType({"4K": 0.24}),
    thinks=True,
    grounding_dialects=_GEMINI,
)
# https://ai.google.dev/gemini-api/docs/image-generation (3.1 Flash Image: up to 14 input
# images; imageSize 512/1K/2K/4K; the ratios 1:4 4:1 1:8 8:1 besides the classic ten; grounding
# with Google Search); https://ai.google.dev/gemini-api/docs/pricing ($60 per 1M output tokens:
# $0.045 at 512, $0.067 at 1K, $0.101 at 2K, $0.151 at 4K).
_FLASH_31 = ModelProfile(
    "gemini-3.1-flash-image",
    max_input_images=14,
    aspect_ratios=RATIOS,
    image_sizes=SIZES,
    n_dialects=_IMAGES,
    history_dialects=_GEMINI,
    price=0.067,
    size_prices=MappingProxyType({"512": 0.045, "1K": 0.067, "2K": 0.101, "4K": 0.151}),
    grounding_dialects=_GEMINI,
)

KNOWN: tuple[ModelProfile, ...] = (
    _FLASH_25,
    _PRO_3,
    _FLASH_31,
    # A relay name for 3 Pro Image: the relay sets the price.
    replace(_PRO_3, family="nano-banana-pro", price=None, size_prices=_NO_PRICES),
    ModelProfile("kling", n_dialects=_IMAGES, ratio_in_images_body=True, prefix=True),
)

_GOOGLE_SUFFIX = re.compile(r"-(preview|latest|exp|\d{2}-\d{4}|\d{4}-\d{2}-\d{2}|\d{8})$")
_RELAY_SUFFIX = re.compile(r"-(hd)$")
# A vendor's or router's prefix: `google/gemini-3-pro-image-preview` (OpenRouter),
# `vertex_ai/...`, `models/...` (Google's resource name).
_VENDOR_PREFIX = re.compile(r"^(?:[a-z0-9_.-]+/)+")


@dataclass(frozen=True)
class ProfileOverride:
    """What a providers file's `[endpoint.profile]` says its relay does differently."""

    max_input_images: int | None = None
    aspect_ratios: tuple[str, ...] | None = None
    image_sizes: tuple[str, ...] | None = None
    supports_n: bool | None = None
    real_history: bool | None = None

    def apply(self, profile: ModelProfile, dialect: DialectName) -> ModelProfile:
        changed = replace(
            profile,
            max_input_images=self.max_input_images or profile.max_input_images,
            aspect_ratios=_given(self.aspect_ratios, profile.aspect_ratios),
            image_sizes=_given(self.image_sizes, profile.image_sizes),
        )
        if self.supports_n is not None:
            changed = replace(
                changed, n_dialects=_toggle(changed.n_dialects, dialect, self.supports_n)
            )
        if self.real_history is not None:
            changed = replace(
                changed,
                history_dialects=_toggle(changed.history_dialects, dialect, self.real_history),
            )
        return changed


def _given(value: tuple[str, ...] | None, default: tuple[str, ...]) -> tuple[str, ...]:
    return default if value is None else value


def _toggle(
    dialects: frozenset[DialectName], dialect: DialectName, on: bool
) -> frozenset[DialectName]:
    return dialects | {dialect} if on else dialects - {dialect}


class ProfileRegistry:
    """Profiles by family name, and the unknown names already reported."""

    def __init__(self, profiles: Iterable[ModelProfile] = KNOWN) -> None:
        self._exact = {p.family: p for p in profiles}
        self._prefixed = sorted(
            (p for p in self._exact.values() if p.prefix), key=lambda p: -len(p.family)
        )
        self._reported: set[str] = set()

    def profile_for(self, model: str, endpoint: Endpoint | None = None) -> ModelProfile:
        profile = self._lookup(model)
        if endpoint is not None and endpoint.profile is not None:
            profile = endpoint.profile.apply(profile, endpoint.dialect)
        return profile

    def _lookup(self, model: str) -> ModelProfile:
        name = _VENDOR_PREFIX.sub("", model.strip().lower())
        relay_alias = False
        while True:
            if name in self._exact:
                found = self._exact[name]
                return replace(found, price=None, size_prices=_NO_PRICES) if relay_alias else found
            if _GOOGLE_SUFFIX.search(name):
                name = _GOOGLE_SUFFIX.sub("", name)
            elif _RELAY_SUFFIX.search(name):
                name, relay_alias = _RELAY_SUFFIX.sub("", name), True
            else:
                break
        for family in self._prefixed:
            if name.startswith(family.family):
                return family
        if model not in self._reported:
            self._reported.add(model)
            log.warning("model %r has no profile: using the safe default", model)
        return SAFE_DEFAULT


REGISTRY = ProfileRegistry()


def profile_for(model: str, endpoint: Endpoint | None = None) -> ModelProfile:
    """The profile of `model`, as `endpoint` (if given) serves it."""
    return REGISTRY.profile_for(model, endpoint)


def successor_of(model: str) -> str | None:
    """The model to use instead of a retired `model`: a preview's GA id, or the family's
    named successor (2.5 Flash Image -> 3.1 Flash Image); None when nobody knows one."""
    name = _VENDOR_PREFIX.sub("", model.strip().lower())
    if name.endswith("-preview"):
        ga = name.removesuffix("-preview")
        found = REGISTRY.profile_for(ga)
        if found.family == ga and found.successor is None:
            return ga
    return REGISTRY.profile_for(model).successor


def size_named(value: str) -> str:
    """A size as Google spells it: `2k` -> `2K`, `0.5k` -> `512` (unknown values unchanged)."""
    size = value.strip().upper()
    return SIZE_ALIASES.get(size, size)


@dataclass(frozen=True)
class Capabilities:
    """What a model can do on every endpoint that may serve it (a job can fail over)."""

    model: str
    max_input_images: int
    aspect_ratios: tuple[str, ...]
    image_sizes: tuple[str, ...]
    supports_n: bool
    real_history: bool
    grounding: bool = False


class Catalog:
    """Capabilities per model over the configured endpoints, as the pool picks them."""

    def __init__(self, endpoints: Sequence[Endpoint], registry: ProfileRegistry = REGISTRY) -> None:
        if not endpoints:
            raise ValueError("a catalog needs at least one endpoint")
        self._endpoints = tuple(endpoints)
        self._registry = registry
        self._known: dict[str, Capabilities] = {}

    @classmethod
    def of_dialect(cls, dialect: str, registry: ProfileRegistry = REGISTRY) -> Catalog:
        """One endpoint of `dialect` serving every model (a service without a providers list)."""
        anywhere = Endpoint("default", cast(DialectName, dialect), base_url="", api_key="")
        return cls([anywhere], registry)

    def capabilities(self, model: str) -> Capabilities:
        found = self._known.get(model)
        if found is None:
            found = self._known[model] = self._combine(model)
        return found

    def _combine(self, model: str) -> Capabilities:
        serving = [e for e in self._endpoints if not e.models or model in e.models]
        pairs = [(self._registry.profile_for(model, e), e) for e in serving or self._endpoints]
        profiles = [p for p, _ in pairs]
        return Capabilities(
            model=model,
            max_input_images=min(p.max_input_images for p in profiles),
            aspect_ratios=_common(p.aspect_ratios for p in profiles),
            image_sizes=_common(p.image_sizes for p in profiles),
            supports_n=all(p.supports_n(e.dialect) for p, e in pairs),
            real_history=all(p.real_history(e.dialect) for p, e in pairs),
            grounding=all(p.grounding(e.dialect) for p, e in pairs),
        )


def _common(choices: Iterable[tuple[str, ...]]) -> tuple[str, ...]:
    """The values every tuple has, in the order of the first."""
    lists = list(choices)
    return tuple(v for v in lists[0] if all(v in other for other in lists[1:]))
