"""Two benchmark runs side by side, as a Markdown table.

    python -m benchmarks.compare BEFORE.json AFTER.json [--labels before after]

Rows are matched by metric name (the table `benchmarks.run` writes into its results file);
the "ok?" column is the second run's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def rows_of(path: Path) -> dict[str, dict[str, str]]:
    results = json.loads(path.read_text())
    return {row["metric"]: row for row in results.get("table", [])}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare")
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--labels", nargs=2, default=("before", "after"))
    args = parser.parse_args(argv)
    before, after = rows_of(args.before), rows_of(args.after)
    names = list(after) + [m for m in before if m not in after]
    print(f"| metric | target | {args.labels[0]} | {args.labels[1]} | ok? |")
    print("|---|---|---|---|---|")
    for name in names:
        b, a = before.get(name, {}), after.get(name, {})
        target = a.get("target") or b.get("target") or "—"
        cells = [name.strip(), target, b.get("measured", "—"), a.get("measured", "—")]
        cells.append(a.get("ok", "—"))
        print("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
