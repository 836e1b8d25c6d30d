"""What several commands of the command line share: the suite and run arguments, the run
options they build, and the errors for a selection or a results folder that holds nothing."""

from __future__ import annotations

import argparse
from pathlib import Path

from .errors import KDBenchError


def suite_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("suite", help="suite file (suites/NAME.yaml, or just NAME)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a suite field, e.g. --set student.epochs=2 (validated like the file)")
    p.add_argument("--tiny", action="store_true", help="a few images per class, one epoch: checks every cell end to end quickly")
    p.add_argument("--quick", action="store_true", help="all the data, one epoch per model: the quick profile that times a suite")
    p.add_argument("--sweep", metavar="FIELD=V1,V2,…",
                   help="run every cell once per value of one teacher.*, student.* or kd.* field, e.g. --sweep kd.temperature=1,4,8")


def suite_overrides(args) -> tuple[str, ...]:
    from .suite_overrides import QUICK_OVERRIDES, TINY_OVERRIDES

    sweep = ()
    if args.sweep:
        if "=" not in args.sweep:
            raise KDBenchError(f"--sweep expects FIELD=V1,V2,…, got {args.sweep!r}")
        field, values = args.sweep.split("=", 1)
        sweep = (f"sweep={{field: '{field.strip()}', values: [{values}]}}",)
    return (TINY_OVERRIDES if args.tiny else ()) + (QUICK_OVERRIDES if args.quick else ()) + tuple(args.overrides) + sweep


def run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-root", help="where datasets live (default: $KDBENCH_DATA, then ~/.cache/kdbench/data)")
    p.add_argument("--download", action="store_true", help="download missing datasets with torchvision (needs a network)")
    p.add_argument("--results", default="results", help="results folder (default: results/)")
    p.add_argument("--cache", help="cache folder for teachers and decoded data (default: $KDBENCH_CACHE or ~/.cache/kdbench)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--cells", help="only cells whose id matches this glob")
    p.add_argument("--shard", help="run shard i of n (i/n), split by teacher")
    p.add_argument("--checkpoint-every", type=float, metavar="SECONDS",
                   help="save a long training's state after an epoch at most this often (default 60; 0: after every epoch). "
                        "Shorter loses less to a hard deadline (a batch job's time limit) for a little time spent saving")


def run_options(args):
    from .determinism import pick_device
    from .runner import RunOptions

    opts = RunOptions(results_dir=Path(args.results), data_root=Path(args.data_root) if args.data_root else None,
                      download=args.download, device=pick_device(args.device))
    if args.cache:
        opts.cache_dir = Path(args.cache)
    if args.checkpoint_every is not None:
        if not args.checkpoint_every >= 0:  # also NaN
            raise KDBenchError(f"--checkpoint-every takes seconds, 0 or more; got {args.checkpoint_every}")
        opts.checkpoint_every_s = args.checkpoint_every
    return opts


def no_cell_selected(suite, pattern: str | None, shard: str | None = None) -> KDBenchError:
    """The error for a --cells glob (or a --shard) that selects nothing, with an id to copy from."""
    from .suite import select_cells

    cells = suite.cells()
    matched = select_cells(cells, pattern)
    if shard and matched:  # the glob matched; the shard is empty
        groups = len({c.teacher_group for c in matched})
        return KDBenchError(f"--shard {shard} of {suite.name} is empty: the {len(matched)} cells selected form {groups} teacher "
                            "group(s), and a shard holds whole groups; use fewer shards")
    return KDBenchError(f"no cell of {suite.name} matches --cells {pattern!r}; its {len(cells)} cell ids look like "
                        f"{cells[0].id} (all: kdbench list {suite.source})")


def what_folder_holds(found: dict[str, dict], folder: Path) -> str:
    """How a suite's results folder failed a command, for its error: missing, empty, or another device class's."""
    there = sorted({r["environment"]["device_class"] for r in found.values()})
    return f"holds results of {', '.join(there)} only" if there else "holds no finished cell" if folder.is_dir() else "does not exist"
