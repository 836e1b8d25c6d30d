"""Did the numbers move? kdbench diff (two results folders, cell by cell) and golden update |
check (a suite's golden file: made over several seeds, compared against results)."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from .cli_args import run_args, run_options, suite_args, suite_overrides, what_folder_holds
from .cli_bench import table_then_problems
from .errors import KDBenchError


def cmd_golden_update(args) -> int:
    from .golden import build_golden, diff_golden, load_golden, merge_partial, seedless, write_golden
    from .runner import Runner
    from .suite import Suite, load_suite, select_cells

    suite = load_suite(args.suite, suite_overrides(args))
    opts = run_options(args)
    spread_seeds = tuple(dict.fromkeys(tuple(suite.spec.seeds) + tuple(args.spread_seeds)))
    if len(spread_seeds) < 3:
        raise KDBenchError(f"golden values need a spread over at least 3 seeds, got {list(spread_seeds)}; pass --spread-seeds")
    wide = Suite(dataclasses.replace(suite.spec, seeds=spread_seeds), suite.source)
    runner = Runner(wide, opts)
    results = runner.run(select_cells(wide.cells(), args.cells))
    by_id = {r["cell_id"]: r for r in results}
    pinned = {c.id: by_id[c.id] for c in select_cells(suite.cells(), args.cells)}
    spread: dict[str, list[dict]] = {}
    for r in results:
        spread.setdefault(seedless(r["cell_id"]), []).append(r)
    cmd = "kdbench golden update " + " ".join(sys.argv[3:]) if len(sys.argv) > 3 else "kdbench golden update"
    # The pinned values' run is the one whose environment the file names (each cell also
    # names every seed's machine: build_golden).
    first = next((r for r in pinned.values() if "environment" in r), next(iter(results)))
    new = build_golden(suite.name, runner.device_class, pinned, spread,
                       {"command": cmd, "spread_seeds": list(spread_seeds), "environment": first["environment"]})
    old = load_golden(suite.name, runner.device_class)
    if old and args.cells:  # a partial update keeps the other cells, each with its provenance
        new = merge_partial(old, new)
    changes = diff_golden(old, new)
    print("\n".join(changes) if changes else "golden values unchanged")
    path = write_golden(new)
    print(f"written {path}")
    return 0


def cmd_golden_check(args) -> int:
    from .golden import compare, load_golden, unseen_machine_note
    from .results import load_results, stale_results
    from .suite import load_suite

    suite = load_suite(args.suite, suite_overrides(args))
    golden = load_golden(suite.name, args.device_class)
    if golden is None:
        raise KDBenchError(f"no golden file golden/{suite.name}/{args.device_class}.json")
    folder = Path(args.results) / suite.name
    found = load_results(suite, Path(args.results))
    # Values measured on one device class say nothing of another's (other kernels round differently).
    results = {k: r for k, r in found.items() if r["environment"]["device_class"] == args.device_class}
    checked = {cid: results[cid] for cid in golden["cells"] if cid in results}
    missing = [cid for cid in golden["cells"] if cid not in checked]
    if not checked:
        # Nothing compared must not read as a pass (a mistyped --results, a suite never run here).
        raise KDBenchError(f"none of the {len(golden['cells'])} cells of golden/{suite.name}/{args.device_class}.json has a "
                           f"result on {args.device_class}: {folder} {what_folder_holds(found, folder)}; nothing to check. Run "
                           "the suite there first, or point --results / --device-class at the results")
    problems = [p for cid, r in checked.items() for p in compare(r, golden["cells"][cid])]
    print("\n".join(problems) if problems else f"{len(checked)} cells within golden tolerances")
    unseen = unseen_machine_note(checked, golden)
    if unseen:
        print(unseen)
    stale = stale_results(suite, Path(args.results), checked)
    if stale:  # a pass on them says how older code or settings did, not the current ones
        print(f"of these, {len(stale)} were made with other settings or training code than now (a re-run would redo them; "
              f"kdbench list {suite.source} --results {args.results} names them)")
    if missing:
        print(f"not checked: {len(missing)} of the {len(golden['cells'])} golden cells have no result on {args.device_class} in "
              f"{folder}: {', '.join(missing[:3])}{', …' if len(missing) > 3 else ''}")
    return 1 if problems else 0


def cmd_diff(args) -> int:
    from .diff import TOP1_METRICS, diff_results, hardware_changes, provenance_changes, speed_section
    from .golden import load_golden
    from .results import load_results
    from .suite import load_suite

    suite = load_suite(args.suite, suite_overrides(args))
    a, b = load_results(suite, Path(args.a)), load_results(suite, Path(args.b))
    common = set(a) & set(b)
    if not common:
        raise KDBenchError(f"no cell of {suite.name} is finished in both {args.a}/{suite.name}/ ({len(a)} cells) and "
                           f"{args.b}/{suite.name}/ ({len(b)} cells)")
    device_class = args.device_class or next(iter(a.values()))["environment"]["device_class"]
    golden = load_golden(suite.name, device_class)
    changes = provenance_changes({k: a[k] for k in common}, {k: b[k] for k in common})
    print(f"A = {args.a}, B = {args.b}: {len(common)} cells in both; tolerances from "
          + (f"golden/{suite.name}/{device_class}.json" if golden else f"no golden file for {device_class}"))
    print("differs in: " + ("; ".join(changes) if changes else "nothing recorded (same torch, GPU, code, data)") + "\n")
    a, b = {k: a[k] for k in common}, {k: b[k] for k in common}
    table, moved = diff_results(a, b, golden, tuple(args.metric or TOP1_METRICS))
    hardware = hardware_changes(a, b)
    speed = speed_section(a, b, "Speed: each cell's own timings, one run each. The only noise they hold is how much a training's "
                          "epochs varied (last column); they never change the exit status (`nox -s bench` judges speed against "
                          "noise measured over repeated runs). "
                          + (f"Other hardware ({'; '.join(hardware)}): these ratios compare the machines, not only the code."
                             if hardware else "Same hardware recorded in both."))
    if speed:
        table += "\n\n" + "\n".join(speed)
    return table_then_problems(table, moved, "metric(s) moved beyond their golden tolerance")


def add_golden_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("diff", help="did a change move the numbers? two results folders of a suite, cell by cell: accuracy against golden tolerances (exit 1: moved), then each cell's own timings side by side")
    suite_args(p)
    p.add_argument("a", help="results folder before (holds SUITE/…)")
    p.add_argument("b", help="results folder after")
    # One value a flag, commas for several: a flag taking several words would swallow the
    # results folders when it comes before them (`--metric test_f1 A B`).
    p.add_argument("--metric", action="extend", type=lambda v: [m for m in v.split(",") if m],
                   help="metrics whose name starts with any of these, comma-separated or the flag repeated "
                        "(default: test_top1,teacher_test_top1)")
    p.add_argument("--device-class", help="golden file to take tolerances from (default: A's device class)")
    p.set_defaults(fn=cmd_diff)
    g = sub.add_parser("golden", help="golden values").add_subparsers(dest="golden_command", required=True)
    p = g.add_parser("update", help="run the suite over several seeds and rewrite its golden file (prints a diff)")
    suite_args(p)
    run_args(p)
    p.add_argument("--spread-seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="seeds whose spread sets the tolerance")
    p.set_defaults(fn=cmd_golden_update)
    p = g.add_parser("check", help="compare existing results with the golden file")
    suite_args(p)
    p.add_argument("--results", default="results")
    p.add_argument("--device-class", default="cpu")
    p.set_defaults(fn=cmd_golden_check)
