"""Command line: kdbench run | list | cost | report | index | predict, and the entry point; the
shared arguments live in cli_args.py, diff and golden update | check in cli_golden.py, the
bench-* commands in cli_bench.py."""

from __future__ import annotations

import argparse
import errno
import signal
import sys
import threading
from pathlib import Path

from .cli_args import no_cell_selected, run_args, run_options, suite_args, suite_overrides, what_folder_holds
from .cli_bench import add_bench_commands
from .cli_golden import add_golden_commands
from .errors import KDBenchError

REPORTS_DIR = Path("reports")


def cmd_list(args) -> int:
    from .suite import load_suite, select_cells

    suite = load_suite(args.suite, suite_overrides(args))
    cells = select_cells(suite.cells(), args.cells)
    if not cells:
        raise no_cell_selected(suite, args.cells)
    of_all = f" of {len(suite.cells())}, those matching {args.cells}" if args.cells else ""
    print(f"{suite.name}: {len(cells)} cells{of_all} ({suite.source})")
    if not args.results:
        for c in cells:
            print(c.id)
        return 0
    # With --results: where each cell stands in that folder (what a re-run would still do).
    from .determinism import pick_device
    from .runner import Runner, RunOptions
    from .standing import cell_lines, saved_training_lines

    opts = RunOptions(results_dir=Path(args.results), data_root=Path(args.data_root) if args.data_root else None, device=pick_device(args.device),
                      log=lambda m: None)  # quiet: no "[data]" lines in a listing
    if args.cache:
        opts.cache_dir = Path(args.cache)
    runner = Runner(suite, opts)
    counts: dict[str, int] = {}
    for status, line in cell_lines(runner, cells):
        counts[status] = counts.get(status, 0) + 1
        print(line)
    saved = saved_training_lines(runner, cells)
    if saved:
        print(f"mid-training checkpoints in {runner.opts.cache_dir / 'checkpoints'} (a run of the suite resumes those named):", *(f"  {line}" for line in saved), sep="\n")
    # The counts last: scripts read them with tail -1 (tools/land_results.sh).
    print("; ".join(f"{n} {k}" for k, n in counts.items()) + f" (in {Path(args.results) / suite.name})")
    return 0


def _report(suite, results_dir: Path, device_class: str, out: Path | None, args=None) -> str:
    """The suite's page; with ``out``, also its figures (beside it, under figures/) and the page file."""
    import os

    from .golden import load_golden
    from .report import NO_RESULTS_MARK, suite_page
    from .results import load_results, stale_results

    found = load_results(suite, results_dir)
    results = {k: v for k, v in found.items() if v["environment"]["device_class"] == device_class}
    if not results and out is not None and out.exists() and NO_RESULTS_MARK not in out.read_text(errors="replace"):
        # A typo in --results or --device-class must not wipe a page of finished results.
        raise KDBenchError(f"{results_dir / suite.name} {what_folder_holds(found, results_dir / suite.name)}: no finished cell "
                           f"of {suite.name} on {device_class}, so {out} (a page with results) was left as it is; point --results "
                           f"at the folder that holds {suite.name}/ (e.g. reports/results/{device_class}) or --device-class at theirs")
    figures: dict[str, str] = {}
    if out is not None and results and not getattr(args, "no_figures", False):
        from .figures import draw_all

        fig_dir = out.parent / "figures" / out.stem
        made = draw_all(results, fig_dir)
        if getattr(args, "gradcam", False):
            from .gradcam import suite_gradcam

            made.update(suite_gradcam(suite, results, results_dir, fig_dir, Path(args.data_root) if args.data_root else None,
                                      Path(args.cache) if args.cache else None, log=lambda m: print(m, file=sys.stderr)))
        figures = {k: Path(os.path.relpath(v, out.parent)).as_posix() for k, v in made.items()}
    elsewhere: dict[str, dict[str, dict]] = {}
    for folder in getattr(args, "compare", None) or ():
        for cid, r in load_results(suite, Path(folder)).items():
            if r["environment"]["device_class"] != device_class:
                elsewhere.setdefault(r["environment"]["device_class"], {})[cid] = r
    page = suite_page(suite.name, suite.spec.description, results, load_golden(suite.name, device_class), device_class, figures,
                      suite.spec.reported, stale_results(suite, results_dir, results), elsewhere)
    if out is not None:
        from .io import atomic_write_bytes

        atomic_write_bytes(out, page.encode())
    return page


def cmd_cost(args) -> int:
    from .cost import Shape, cost_table, duration, flops_text, measured_epoch_seconds, measured_seconds, suite_stages, timing_results
    from .cpu_bf16 import slow_bf16_warning
    from .determinism import environment, hardware
    from .runner import Runner
    from .suite import load_suite, select_cells

    if args.tflops is not None and not 0 < args.tflops < float("inf"):
        raise KDBenchError(f"--tflops is a sustained rate > 0 in TFLOP/s, got {args.tflops}")
    if args.device_class and not args.timed_by:
        raise KDBenchError("--device-class chooses which results of --timed-by DIR time the suite: give --timed-by too")
    suite = load_suite(args.suite, suite_overrides(args))
    cells = select_cells(suite.cells(), args.cells)
    if not cells:
        raise no_cell_selected(suite, args.cells)
    opts = run_options(args)
    opts.log = lambda m: print(m, file=sys.stderr)
    runner = Runner(suite, opts)
    shapes = {}
    for name in sorted({c.dataset for c in cells}):
        p = runner.prepare(name)  # the split sizes need the data (decoded once, then cached)
        shapes[name] = Shape(p.data.channels, p.image_size, p.data.num_classes, len(p.train), len(p.val))
    stages = suite_stages(suite, cells, shapes)
    total = sum(s.flops for s in stages)
    # Cells whose current result is already in --results need none of their trainings again.
    finished = {cid for cid, (_, changed) in runner.ok_results(cells).items() if not changed}
    todo = [s for s in stages if any(cid not in finished for cid in s.cells)]
    epoch_seconds = None
    if args.timed_by:
        timed_folder = Path(args.timed_by) / suite.name
        timing, device_class = timing_results(timed_folder, args.device_class)
        epoch_seconds = measured_epoch_seconds(timing)
    print(f"{suite.name}: {len(cells)} cells, {len(stages)} trainings and teacher-logit tables ({suite.source})")
    print("Upper bounds: every epoch of the recipe (early stopping can end sooner); a training step counts as 3 forward passes; "
          "teachers and assistants once (the runner caches them).")
    if epoch_seconds is not None:
        timed_on = sorted({hardware(r.get("environment", {})) for r in timing})
        print(f"Measured: seconds per epoch on {device_class} ({'; '.join(timed_on)}) from {len(timing)} result{'s' * (len(timing) != 1)} in "
              f"{timed_folder} (median over epochs after the first); FLOPs alone misjudge time where kernel launches, not arithmetic, bound a model.")
        here = hardware(environment(runner.device))
        if device_class == runner.device_class and here not in timed_on:
            print(f"This machine is {here}, other hardware of the same device class: its times can differ several-fold "
                  "(a 2-core AMD EPYC with AVX2 trained s4's ResNet-18 teacher 3.8x slower than a 2-core Intel Xeon with AVX-512).")
    slow = slow_bf16_warning([c.precision for c in cells], runner.device)  # FLOPs and other machines' times hide it
    if slow:
        print(slow)
    print()
    print(cost_table(stages, args.tflops, epoch_seconds))
    print()

    def at(chosen: list) -> str:
        flops = sum(s.flops for s in chosen)
        text = f"; at {args.tflops:g} TFLOP/s sustained: {duration(flops / (args.tflops * 1e12))}" if args.tflops else ""
        if epoch_seconds is not None:
            trainings = [s for s in chosen if s.epochs]  # the teacher-logit tables are one forward pass each: not timed
            timed = [t for t in (measured_seconds(s, epoch_seconds) for s in trainings) if t is not None]
            text += f"; at the measured epoch times: {duration(sum(timed))} for {len(timed)} of {len(trainings)} trainings"
            if len(timed) < len(trainings):
                text += " (the others are not measured on that device and not in it)"
        return text

    print(f"total: {flops_text(total)}{at(stages)}")
    if finished:
        print(f"left to run: {flops_text(sum(s.flops for s in todo))}{at(todo)} ({len(finished)} of {len(cells)} cells have a current result in {runner.result_path(cells[0]).parent})")
    return 0


def cmd_run(args) -> int:
    from .io import unwritable_folder
    from .runner import Runner
    from .suite import load_suite, select_cells

    suite = load_suite(args.suite, suite_overrides(args))
    opts = run_options(args)
    runner = Runner(suite, opts)
    cells = select_cells(suite.cells(), args.cells, args.shard)
    if not cells:
        raise no_cell_selected(suite, args.cells, args.shard)
    # Before the runner decodes data or trains: a mistyped path or a read-only disk says so at once.
    for flag, folder in (("--results", opts.results_dir / suite.name), ("--cache", opts.cache_dir)):
        problem = unwritable_folder(folder)
        if problem:
            raise KDBenchError(f"{flag} {folder}: {problem}; nothing was run")
    results = runner.run(cells)
    print()
    print(_report(suite, opts.results_dir, runner.device_class, None))
    failed = [r["cell_id"] for r in results if r["status"] == "failed"]
    unsupported = [r["cell_id"] for r in results if r["status"] == "unsupported"]
    if unsupported:
        print(f"{len(unsupported)} cell(s) cannot run on this machine (recorded as unsupported, with the reason): {', '.join(unsupported)}", file=sys.stderr)
    if failed:
        print(f"{len(failed)} cell(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def cmd_report(args) -> int:
    from .suite import load_suite

    suite = load_suite(args.suite, suite_overrides(args))
    out = Path(args.out) if args.out else REPORTS_DIR / f"{suite.name}-{args.device_class}.md"
    print(_report(suite, Path(args.results), args.device_class, out, args))
    print(f"written to {out}", file=sys.stderr)
    return 0


def cmd_index(args) -> int:
    from .golden import GOLDEN_DIR
    from .index_page import build_index
    from .io import atomic_write_bytes

    out = Path(args.out)
    page = build_index(Path(args.suites), Path(args.results), out, GOLDEN_DIR)
    atomic_write_bytes(out, page.encode())
    print(page)
    print(f"written to {out}", file=sys.stderr)
    return 0


def cmd_predict(args) -> int:
    from tabulate import tabulate

    from .predict import predict_images

    rows, unread = [], []
    for r in predict_images(Path(args.result), [Path(i) for i in args.images], args.top_k):
        if "error" in r:
            unread.append(r["error"])
            continue
        for rank, t in enumerate(r["top"], 1):
            rows.append([r["image"] if rank == 1 else "", rank, t["class"], f"{100 * t['probability']:.2f}"])
    if rows:
        print(tabulate(rows, ["image", "rank", "class", "probability %"], tablefmt="github"))
    for message in unread:
        print(f"kdbench: error: {message}", file=sys.stderr)
    return 1 if unread else 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="kdbench", description="Reproducible knowledge-distillation benchmarks.")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("run", help="run a suite's cells (resumes: finished cells are skipped)")
    suite_args(p)
    run_args(p)
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("list", help="print a suite's cells and their ids (with --results: each cell's status there)")
    suite_args(p)
    p.add_argument("--results", help="a results folder: show whether each cell is done (and its test top-1), failed, unsupported or not run, "
                   "and how far trainings saved mid-way under the cache got")
    p.add_argument("--cache", help="with --results: the cache folder whose mid-training checkpoints to show (default: $KDBENCH_CACHE or ~/.cache/kdbench)")
    p.add_argument("--data-root", help="with --results: where datasets live, to tell which checkpoints are this suite's (default: $KDBENCH_DATA)")
    p.add_argument("--device", default="auto", help="with --results: the device whose runs' checkpoints to show (auto, cpu or cuda)")
    p.add_argument("--cells", help="only cells whose id matches this glob (as kdbench run takes it)")
    p.set_defaults(fn=cmd_list)
    p = sub.add_parser("cost", help="the compute a suite's trainings will take (FLOPs, per training and in all), before it runs")
    suite_args(p)
    run_args(p)
    p.add_argument("--tflops", type=float, help="a sustained rate (TFLOP/s) to turn FLOPs into time, e.g. one measured on your GPU")
    p.add_argument("--timed-by", metavar="DIR", help="a results folder of an earlier run of this suite (a quick profile will do): "
                                                     "time each training by its measured seconds per epoch")
    p.add_argument("--device-class", help="with --timed-by: the device class whose results time it (default: the only one there)")
    p.set_defaults(fn=cmd_cost)
    p = sub.add_parser("report", help="regenerate the Markdown result table")
    suite_args(p)
    p.add_argument("--results", default="results")
    p.add_argument("--device-class", default="cpu", help="cpu, cuda-sm90, …")
    p.add_argument("--out", help="output file (default: reports/SUITE-DEVICECLASS.md); figures go to figures/ beside it")
    p.add_argument("--no-figures", action="store_true", help="tables only")
    p.add_argument("--compare", nargs="+", metavar="DIR", help="results folders of other device classes (e.g. reports/results/cuda-sm90): "
                                                                "the page compares the cells finished both there and here")
    p.add_argument("--gradcam", action="store_true",
                   help="also Grad-CAM maps per student and best vs worst (loads the students' weights and the test images)")
    p.add_argument("--data-root", help="where datasets live, for --gradcam (default: $KDBENCH_DATA, then ~/.cache/kdbench/data)")
    p.add_argument("--cache", help="cache folder for decoded data, for --gradcam")
    p.set_defaults(fn=cmd_report)
    p = sub.add_parser("index", help="the overview page of every suite: cells finished per device class, golden values, published figures")
    p.add_argument("--suites", default="suites", help="the folder of suite files (default: suites)")
    p.add_argument("--results", default=str(REPORTS_DIR / "results"), help="one results folder per device class (default: reports/results)")
    p.add_argument("--out", default=str(REPORTS_DIR / "README.md"), help="the page (default: reports/README.md); pages it links sit beside it")
    p.set_defaults(fn=cmd_index)
    p = sub.add_parser("predict", help="classify images with the student of a finished cell")
    p.add_argument("result", help="results/<suite>/<cell-id>.json")
    p.add_argument("images", nargs="+")
    p.add_argument("--top-k", type=int, default=3)
    p.set_defaults(fn=cmd_predict)
    add_bench_commands(sub)
    add_golden_commands(sub)
    return ap


class Terminated(KeyboardInterrupt):
    """SIGTERM (Slurm at a job's time limit, timeout, kill): the same orderly stop as Ctrl-C."""


def _on_sigterm(signum, frame):
    raise Terminated


def _a_file_system_problem(e: OSError) -> bool:
    """An error about a path or a disk, as opposed to a bug: it names a file, or the disk is full
    or read-only (a write into an open file names none)."""
    return e.filename is not None or e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from .determinism import flush_denormals

    flush_denormals()  # before any torch work starts its thread pool (see there)
    # Signal handlers can only be set in the main thread; the caller's is put back after (tests call main()).
    before = signal.signal(signal.SIGTERM, _on_sigterm) if threading.current_thread() is threading.main_thread() else None
    try:
        return args.fn(args)
    except KDBenchError as e:
        print(f"kdbench: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # output piped into head & co., which stopped reading: not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as e:
        if not _a_file_system_problem(e):
            raise
        # A results, cache or data path that cannot be written or read (not a folder, a full
        # or read-only disk): the user's to fix, and nothing finished is lost with it.
        where = f": {e.filename}" + (f" → {e.filename2}" if e.filename2 else "") if e.filename else ""
        print(f"kdbench: error: {e.strerror or e}{where}. Finished cells are saved (a result file is written whole or "
              "not at all) and a long training resumes from its last checkpoint: fix this, then run the same command "
              "again to resume.", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        how = "stopped by SIGTERM" if isinstance(e, Terminated) else "interrupted"
        print(f"\nkdbench: {how}. Finished cells are saved, and a long training resumes from its last checkpoint (taken "
              "after an epoch, at most once a minute): run the same command again to resume.", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    finally:
        if before is not None:
            signal.signal(signal.SIGTERM, before)


if __name__ == "__main__":
    sys.exit(main())
