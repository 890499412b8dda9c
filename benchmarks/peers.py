"""This bot next to two peer bots, on the same fakes and the same K-chats scenarios.

    python -m benchmarks.peers --peer-dir CHECKOUT [--peer-dir CHECKOUT ...]
                               [--chats 1 10 100] [--latency 5] [--venvs /tmp] [--out FILE]

Each CHECKOUT is a peer's source tree (never committed here), recognised by its layout:

* laoguodong/Gemini-Telegram-Bot (pyTelegramBotAPI + google-genai), asked with `/draw <prompt>`;
* s-nagaev/chibi (python-telegram-bot + google-genai), asked with `/imagine <prompt>` and its
  default image model for a Gemini key (Imagen, the `:predict` route).

A peer runs with its own Python: `<venvs>/bench-peer-<name>/bin/python`, created and filled from
the checkout's requirements.txt on first use. The launcher changes none of a peer's code: it
passes the settings the peer documents (token, API key, admin id, allowed users, data path),
points google-genai at the fake image API with GOOGLE_GEMINI_BASE_URL and the Bot API library at
the fake Telegram: chibi's TELEGRAM_BASE_URL setting, plus `benchmarks/peers/sitecustomize.py`,
which sets pyTelegramBotAPI's address attribute (it has no setting) and python-telegram-bot's
default address (chibi builds a second Bot at start-up without its setting). Peers log at their
own default level; this bot runs as in run.py (LOG_LEVEL=WARNING).

For each K: this bot and then the floor (`benchmarks/floor.py`) through `benchmarks.run.Runner`,
then each peer, each with fresh fakes, a
fresh process and three warm-up jobs first; K chats each send one prompt at once, upstream latency
L, flat 1024x1024 answers, no flood limits in the fake and this bot's limiter off (the peers pace
nothing). Printed per program and K: overhead p50 (update delivered -> upstream request, plus
upstream answer -> photo upload), wall (first update -> last photo answered), Bot API calls per
image (all; of which messages), CPU per image and peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import venv
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from benchmarks.fakes import AnswerImage, TimedImageAPI
from benchmarks.run import (
    API_KEY,
    PROMPT,
    SETUP_METHODS,
    WARM_UP_JOBS,
    Phase,
    Runner,
    Scenario,
    _chat_of,
    _mb,
    _stop,
    machine,
    pct,
    scenarios,
)
from bot.diagnostics import LoopMonitor, proc_status_kb
from bot.telegram.ratelimit import MESSAGE_METHODS
from tests.fakes.telegram_api import FakeTelegram

LAUNCHER_FILES = Path(__file__).resolve().parent / "peers"


@dataclass(frozen=True)
class Peer:
    """How to start one peer bot and ask it for an image; its code stays as it is."""

    name: str
    checkout: Path
    python: Path
    command: str  # the chat command that asks for an image
    final: str  # the Bot API method that delivers the image

    def argv(self, tg: FakeTelegram, admin: int) -> list[str]:
        if self.name == "chibi":
            return [str(self.python), "-m", "chibi"]
        return [
            str(self.python),
            str(self.checkout / "main.py"),
            tg.token,
            API_KEY,
            "--admin-uid",
            str(admin),
        ]

    def env(self, tg: FakeTelegram, api: TimedImageAPI, data: Path) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "TMPDIR")}
        env.update(
            HOME=str(data),  # chibi's agent home and any cache stay in the temp dir
            PYTHONUNBUFFERED="1",
            PYTHONPATH=str(LAUNCHER_FILES),
            BENCH_TELEGRAM_API_URL=tg.root,
            GOOGLE_GEMINI_BASE_URL=api.root,
        )
        if self.name == "chibi":
            env.update(
                PYTHONPATH=os.pathsep.join((str(LAUNCHER_FILES), str(self.checkout))),
                TELEGRAM_BOT_TOKEN=tg.token,
                TELEGRAM_BASE_URL=f"{tg.root}/bot",
                TELEGRAM_BASE_FILE_URL=f"{tg.root}/file/bot",
                GEMINI_API_KEY=API_KEY,
                LOCAL_DATA_PATH=str(data),
            )
        return env

    def allow(self, data: Path, users: list[int]) -> dict[str, str]:
        """Let every user of the run in, the way the peer is configured for it: a setting, or
        the file its /adduser command writes into its working directory."""
        if self.name == "chibi":
            return {"USERS_WHITELIST": ",".join(map(str, users))}
        (data / "authorized_users.json").write_text(json.dumps(users))
        return {}


def find_peer(checkout: Path, venvs: Path) -> Peer:
    checkout = checkout.resolve()
    if (checkout / "chibi" / "__main__.py").is_file():
        name, command, final = "chibi", "/imagine", "sendMediaGroup"
    elif (checkout / "gemini.py").is_file() and (checkout / "handlers.py").is_file():
        name, command, final = "gemini-telegram-bot", "/draw", "sendPhoto"
    else:
        raise SystemExit(f"{checkout}: neither Gemini-Telegram-Bot nor chibi")
    env_dir = venvs / f"bench-peer-{name}"
    python = env_dir / "bin" / "python"
    if not python.exists():
        print(f"making {env_dir} from {checkout / 'requirements.txt'}", file=sys.stderr)
        venv.create(env_dir, with_pip=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "-r", str(checkout / "requirements.txt")],
            check=True,
        )
    return Peer(name, checkout, python, command, final)


class _FinalAsPhoto:
    """The fake Telegram's calls with a peer's delivering method shown as sendPhoto, so that
    run.py's completion and overhead measurement read any peer."""

    def __init__(self, tg: FakeTelegram, final: str) -> None:
        self._tg = tg
        self._final = final
        self.delivered_at = tg.delivered_at

    @property
    def calls(self) -> list[Any]:
        return [
            replace(c, method="sendPhoto") if c.method == self._final else c for c in self._tg.calls
        ]


class PeerRunner(Runner):
    """run.py's Runner with a peer in place of this bot: same fakes, jobs and measurements."""

    def __init__(self, scenario: Scenario, tmp: Path, peer: Peer) -> None:
        super().__init__(scenario, tmp)
        self.peer = peer

    async def _jobs(self, tg: FakeTelegram, chats: list[int], gap: float) -> None:
        for chat in chats:
            user = tg.user(chat, first_name=f"U{chat}")
            tg.send_text(chat, f"{self.peer.command} job-{chat} {PROMPT}", user=user)

    async def phase(
        self, tg: FakeTelegram, api: TimedImageAPI, answer: AnswerImage, who: str, chat_base: int
    ) -> dict[str, Any]:
        sc, peer = self.sc, self.peer
        data = self.tmp / f"{peer.name}-data"
        data.mkdir()
        warms = [chat_base - 1 - i for i in range(WARM_UP_JOBS)]
        warm, chats = warms[0], [chat_base + i for i in range(sc.jobs)]  # warm: the admin
        allowed = peer.allow(data, [*warms, *chats])
        view: Any = _FinalAsPhoto(tg, peer.final)
        log = (self.tmp / f"{peer.name}.log").open("wb")  # closed below
        polls_before = len(tg.calls_of("getUpdates"))
        proc = await asyncio.create_subprocess_exec(
            *peer.argv(tg, warm),
            env=peer.env(tg, api, data) | allowed,
            cwd=str(data),
            stdout=log,
            stderr=log,
        )
        result = Phase(who=peer.name, jobs=sc.jobs)
        fakes_monitor = LoopMonitor(None)
        try:
            await self._wait_ready(tg, proc, polls_before)
            api.latency = 0.0  # the warm-up jobs, as in run.py
            await self._jobs(tg, warms, gap=0.0)
            if not await self._wait_done(view, warms, answer, limit=60):
                raise RuntimeError(f"{peer.name} sent no image for the warm-up jobs")
            await asyncio.sleep(0.5)
            api.latency = sc.latency
            result.idle_rss_mb = _mb(proc_status_kb("VmRSS", proc.pid))
            await self._measured(result, proc, tg, view, answer, chats, fakes_monitor)
            self._measure(result, view, api, chats)
            wanted = set(chats)
            mine = [c for c in tg.calls if _chat_of(c) in wanted]
            result.calls = dict(sorted(Counter(c.method for c in mine).items()))
            refused = Counter(
                f"{c.method} {c.response.get('description')}"
                for c in mine
                if not c.ok and c.response
            )
        finally:
            await _stop(proc)
            log.close()
        tail = (self.tmp / f"{peer.name}.log").read_text(errors="replace").splitlines()
        bad = [line[:300] for line in tail if "ERROR" in line or "Traceback" in line]
        result.errors += bad[:10]
        upstream = sorted({r.path for r in api.requests})
        return asdict(result) | {"upstream": upstream, "refused": dict(refused)}


# ---------------------------------------------------------------------------------------------


def k_chats(latency: float, ks: list[int]) -> list[Scenario]:
    """run.py's chats-K-off scenarios for the chosen K, with the floor run after this bot."""
    by_name = {s.name: s for s in scenarios(False, latency)}
    return [replace(by_name[f"chats-{k}-off"], floor=True) for k in ks]


def row(k: int, phase: dict[str, Any]) -> dict[str, Any]:
    calls = {m: n for m, n in phase["calls"].items() if m not in SETUP_METHODS}
    jobs = phase["jobs"] or 1
    return {
        "who": phase["who"],
        "chats": k,
        "done": f"{phase['done']}/{phase['jobs']}",
        "overhead_p50_ms": pct(phase["overhead_ms"], 0.5),
        "wall_s": phase["wall"],
        "calls_per_image": round(sum(calls.values()) / jobs, 2),
        "messages_per_image": round(
            sum(n for m, n in calls.items() if m in MESSAGE_METHODS) / jobs, 2
        ),
        "calls": calls,
        "cpu_ms_per_image": phase["cpu_ms_per_job"],
        "peak_rss_mb": phase["peak_rss_mb"],
        "errors": phase["errors"],
        "upstream": phase.get("upstream"),
        "refused": phase.get("refused", {}),  # calls the fake Telegram answered with an error
    }


def render(rows: list[dict[str, Any]], latency: float, info: dict[str, Any]) -> str:
    def fmt(v: float | None, nd: int = 1) -> str:
        return "n/a" if v is None else f"{v:.{nd}f}"

    head = (
        "program",
        "chats",
        "overhead p50 (ms)",
        f"wall (s), L = {latency:g} s",
        "Bot API calls / image (messages)",
        "CPU / image (ms)",
        "peak RSS (MB)",
    )
    body = [
        (
            r["who"],
            str(r["chats"]),
            fmt(r["overhead_p50_ms"]),
            fmt(r["wall_s"], 2) if r["wall_s"] is not None else f"{r['done']} done",
            f"{r['calls_per_image']:g} ({r['messages_per_image']:g})",
            fmt(r["cpu_ms_per_image"]),
            fmt(r["peak_rss_mb"], 0),
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [head, *body]) for i in range(len(head))]
    lines = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths, strict=True)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += [
        "| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |"
        for line in body
    ]
    lines.append("")
    lines.append(
        f"Machine: {info['cpu']}, {info['cores']} cores, {info['memory_mb']} MB RAM; "
        f"{info['os']}; Python {info['python']}."
    )
    routes = {r["who"]: r["upstream"] for r in rows if r["upstream"]}
    lines += [
        f"{who} asked the fake image API at {', '.join(paths)}" for who, paths in routes.items()
    ]
    for r in rows:
        lines += [f"{r['who']} at {r['chats']}: refused {n} × {m}" for m, n in r["refused"].items()]
        lines += [f"{r['who']} at {r['chats']}: {e}" for e in r["errors"][:3]]
    return "\n".join(lines)


async def run_all(args: argparse.Namespace, peers: list[Peer]) -> dict[str, Any]:
    results: dict[str, Any] = {
        "machine": machine(),
        "latency": args.latency,
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "peers": {p.name: str(p.checkout) for p in peers},
        "rows": [],
    }
    for sc in k_chats(args.latency, args.chats):
        for peer in [None, *peers]:
            who = peer.name if peer else "this bot"
            t = time.monotonic()
            with tempfile.TemporaryDirectory(prefix=f"bench-peers-{sc.name}-") as tmp:
                runner = (
                    PeerRunner(replace(sc, floor=False), Path(tmp), peer)
                    if peer
                    else Runner(sc, Path(tmp))
                )
                try:
                    res = await runner.run()
                except Exception as exc:  # report and go on: a benchmark, not a test
                    res = {"error": repr(exc)}
                if args.keep:
                    kept = Path(tempfile.mkdtemp(prefix=f"bench-peers-kept-{sc.name}-"))
                    for log in Path(tmp).glob("*.log"):
                        with contextlib.suppress(OSError):
                            os.replace(log, kept / log.name)
                    print(f"logs kept in {kept}", file=sys.stderr)
            if "error" in res:
                print(f"{who}, {sc.name}: {res['error']}", file=sys.stderr)
                continue
            for phase in res["phases"]:  # this bot's run also holds the floor's
                phase["who"] = who if phase["who"] == "bot" else phase["who"]
                r = row(sc.jobs, phase)
                results["rows"].append(r)
                print(
                    f"[{time.monotonic() - t:6.1f} s] {r['who']}, {sc.jobs} chats: {r['done']} "
                    f"done, wall {r['wall_s']}, p50 {r['overhead_p50_ms']}, calls {r['calls']}",
                    file=sys.stderr,
                    flush=True,
                )
    results["verdict"] = verdict(results["rows"])
    return results


def verdict(rows: list[dict[str, Any]]) -> list[str]:
    """Per K: this bot's overhead p50 against the floor's (target ≤ 2×) and each peer's (below)."""
    out = []
    for k in sorted({r["chats"] for r in rows}):
        at = {r["who"]: r["overhead_p50_ms"] for r in rows if r["chats"] == k}
        ours, floor = at.get("this bot"), at.get("floor")
        if ours is None:
            continue
        parts = []
        if floor:
            ratio = ours / floor
            parts.append(f"{ratio:.2f}× the floor ({'ok' if ratio <= 2 else 'over 2×'})")
        for who, theirs in at.items():
            if who in ("this bot", "floor") or theirs is None:
                continue
            parts.append(f"{'below' if ours < theirs else 'NOT below'} {who} ({theirs:.1f} ms)")
        out.append(f"{k} chats: this bot {ours:.1f} ms = " + ", ".join(parts))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.peers",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--peer-dir", type=Path, action="append", default=[], help="a peer's checkout (repeat)"
    )
    parser.add_argument(
        "--chats", type=int, nargs="+", choices=(1, 10, 100, 500), default=[1, 10, 100]
    )
    parser.add_argument("--latency", type=float, default=5.0, help="upstream latency L (s)")
    parser.add_argument(
        "--venvs", type=Path, default=Path(tempfile.gettempdir()), help="where peers' venvs live"
    )
    parser.add_argument("--out", type=Path, help="also write the results here as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the programs' logs")
    args = parser.parse_args(argv)
    peers = [find_peer(d, args.venvs) for d in args.peer_dir]
    started = time.monotonic()
    results = asyncio.run(run_all(args, peers))
    results["seconds"] = round(time.monotonic() - started, 1)
    if args.out:
        args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    print(render(results["rows"], args.latency, results["machine"]))
    print("\n".join(["", *results["verdict"]]))
    print(f"\n{results['seconds']:.0f} s" + (f"; details in {args.out}" if args.out else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
