"""The benchmark commands of the command line: kdbench bench-report | bench-compare | bench-noise
(pytest-benchmark JSON files in, Markdown tables and regression verdicts out)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import KDBenchError


def table_then_problems(table: str, problems: list[str], what: str) -> int:
    """Print the table, then the problems on stderr; exit status 1 when there are any."""
    print(table)
    if problems:
        print(f"\n{len(problems)} {what}:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 1
    return 0


def cmd_bench_report(args) -> int:
    from .bench_report import bench_tables
    from .io import atomic_write_bytes

    page = bench_tables(Path(args.json))
    out = Path(args.out) if args.out else Path(args.json).with_suffix(".md")
    atomic_write_bytes(out, page.encode())
    print(page)
    print(f"written to {out}", file=sys.stderr)
    return 0


def cmd_bench_compare(args) -> int:
    import json

    from .bench_compare import compare, machine_of, threshold_for

    new = Path(args.new)
    if args.baseline:
        baseline = Path(args.baseline)
    else:  # the saved baseline measured on this machine, if there is one
        try:
            here = machine_of(json.loads(new.read_text()))
        except (OSError, ValueError) as e:
            raise KDBenchError(f"{new}: not a pytest-benchmark JSON file ({e})") from None
        saved = {p: json.loads(p.read_text()) for p in sorted(Path(args.baseline_dir).glob("*.json"))}
        matches = [p for p, data in saved.items() if machine_of(data) == here]
        if not matches:
            print(f"no saved baseline in {args.baseline_dir}/ was measured on this machine ({here}); nothing to compare. "
                  f"To make {new} the baseline: copy it into {args.baseline_dir}/, measure the noise with kdbench bench-noise "
                  f"and record the threshold in {args.baseline_dir}/thresholds.json.")
            return 0
        # Several baselines of this machine (a full run, a KD-only subset): the one sharing the
        # most benchmarks with the new run, the newest name on a tie.
        ran = {b["fullname"] for b in json.loads(new.read_text()).get("benchmarks", [])}
        baseline = max(matches, key=lambda p: (len(ran & {b["fullname"] for b in saved[p].get("benchmarks", [])}), p.name))
    if args.threshold is not None:
        threshold, reason, families = args.threshold, "given with --threshold", {}
    else:
        threshold, reason, families = threshold_for(baseline, Path(args.baseline_dir) / "thresholds.json")
    table, regressions = compare(baseline, new, threshold, families)
    per_family = f"; per family: {', '.join(f'{f} {100 * t:.0f} %' for f, t in families.items())}" if families else ""
    print(f"{new} against {baseline}; threshold {100 * threshold:.0f} %{per_family} ({reason})\n")
    return table_then_problems(table, regressions, "regression(s)")


def cmd_bench_noise(args) -> int:
    from .bench_compare import noise

    n = noise([Path(p) for p in args.runs])
    print(f"{n['runs']} runs of {n['benchmarks']} benchmarks on {n['machine']}: largest/smallest median - 1 per benchmark: "
          f"median {100 * n['median_spread']:.1f} %, 95th percentile {100 * n['p95_spread']:.1f} %, max {100 * n['max_spread']:.1f} %")
    for f, spread in n["family_max_spread"].items():
        print(f"  {f}: max {100 * spread:.1f} %")
    if args.save:
        from .bench_compare import save_baseline

        target, threshold, _ = save_baseline([Path(p) for p in args.runs], args.save, Path(args.baseline_dir), args.command or "")
        print(f"saved {args.runs[0]} as {target}, threshold {100 * threshold:.0f} % in {Path(args.baseline_dir) / 'thresholds.json'}")
    return 0


def add_bench_commands(sub: argparse._SubParsersAction) -> None:
    """The bench-* subcommands, added to the kdbench parser."""
    p = sub.add_parser("bench-report", help="Markdown tables from a pytest-benchmark JSON file")
    p.add_argument("json")
    p.add_argument("--out", help="output file (default: the JSON's name with .md)")
    p.set_defaults(fn=cmd_bench_report)
    p = sub.add_parser("bench-compare", help="compare a pytest-benchmark run with the saved baseline (exit 1 on a regression)")
    p.add_argument("new", help="pytest-benchmark JSON of the new run")
    p.add_argument("--baseline", help="baseline JSON (default: the one in --baseline-dir measured on the same machine)")
    p.add_argument("--baseline-dir", default="benchmarks")
    p.add_argument("--threshold", type=float, help="allowed slowdown as a fraction (default: from BASELINE_DIR/thresholds.json)")
    p.set_defaults(fn=cmd_bench_compare)
    p = sub.add_parser("bench-noise", help="run-to-run spread of repeated benchmark runs (sets a baseline's threshold)")
    p.add_argument("runs", nargs="+", help="pytest-benchmark JSON files of the same code on the same machine")
    p.add_argument("--save", metavar="NAME", help="save the first run as the baseline BASELINE_DIR/NAME.json with the threshold this noise sets")
    p.add_argument("--baseline-dir", default="benchmarks")
    p.add_argument("--command", help="with --save: the command that made the runs, recorded with the threshold")
    p.set_defaults(fn=cmd_bench_noise)
