"""A clock the test moves by hand, for modules that read `time.monotonic()`."""

from __future__ import annotations

from types import ModuleType, SimpleNamespace

import pytest


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now


def install(monkeypatch: pytest.MonkeyPatch, module: ModuleType, now: float) -> Clock:
    """Give `module` a `time` whose monotonic() is the returned clock's."""
    clock = Clock(now)
    monkeypatch.setattr(module, "time", SimpleNamespace(monotonic=clock.monotonic))
    return clock
