"""What ``--set``, ``--quick``, ``--tiny`` and a sweep do to a suite's raw YAML data before it
is built: dotted assignments, a copy without YAML's shared references, and the pairs'
``kd_by_pair`` settings filled in from the suite's ``kd`` (with the one override that would
reach only some pairs refused)."""

from __future__ import annotations

from typing import Any

import yaml

from .errors import SuiteError


def apply_override(data: dict, assignment: str, source: str) -> None:
    """Apply ``a.b.c=value`` (value parsed as YAML) to a raw suite mapping in place."""
    if "=" not in assignment:
        raise SuiteError(source, "--set", f"expected KEY=VALUE, got {assignment!r}")
    key, raw = assignment.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise SuiteError(source, f"--set {key}", f"value {raw!r} is not valid YAML: {e}") from None
    set_path(data, key, value, source)


def set_path(data: dict, key: str, value: Any, source: str) -> None:
    """data[a][b][c] = value for key "a.b.c", creating mappings on the way."""
    parts = key.strip().split(".")
    node = data
    for i, p in enumerate(parts[:-1]):
        nxt = node.get(p)
        if nxt is None:
            nxt = node[p] = {}
        if not isinstance(nxt, dict):
            raise SuiteError(source, ".".join(parts[: i + 1]), "is not a mapping; cannot set a key inside it")
        node = nxt
    node[parts[-1]] = value


# --tiny: every cell end to end in seconds on a CPU (a handful of images, one epoch), to
# catch a broken cell without a GPU. Results of a tiny run are not comparable to anything.
# --quick: every cell on the full data for one epoch (teacher and student): the profile that
# times a whole suite on a GPU, and checks every cell at full image count.
QUICK_OVERRIDES = ("teacher.epochs=1", "student.epochs=1", "teacher.early_stopping.patience=0", "student.early_stopping.patience=0")

TINY_OVERRIDES = (
    "split.max_per_class=8", "teacher.epochs=1", "student.epochs=1", "teacher.batch_size=16", "student.batch_size=16",
)


def _own_kd(entry: Any) -> dict | None:
    """The ``kd`` mapping a ``kd_by_pair`` entry sets for its pair, or None where the entry is
    malformed (the builder says how)."""
    if isinstance(entry, dict) and isinstance(entry.get("kd"), dict):
        return entry["kd"]
    return None


def with_pair_kd_in_full(data: dict) -> dict:
    """Raw suite data whose ``kd_by_pair`` entries hold the suite's ``kd`` with their own
    fields over it, so that each is built and checked as a whole KDSpec, and an override or
    a sweep of ``kd.*`` reaches the pairs too (one of a field a pair sets itself is refused:
    ``refuse_kd_a_pair_keeps``)."""
    entries, base = data.get("kd_by_pair"), data.get("kd") or {}
    if not isinstance(entries, list) or not isinstance(base, dict):
        return data  # the builder says what is wrong with them
    full = [e if _own_kd(e) is None else dict(e, kd={**base, **_own_kd(e)}) for e in entries]
    return dict(data, kd_by_pair=full)


def refuse_kd_a_pair_keeps(data: dict, key: str, source: str, where: str) -> None:
    """An override or sweep of ``kd.<field>`` where a ``kd_by_pair`` entry sets that field
    itself is an error: the pair's own value wins, so the change would reach only the other
    pairs (``--set kd.dkd_beta=5`` on canonical-cifar would move one pair of four), or a sweep
    would repeat one setting under every label. ``--set kd_by_pair=[]`` before it drops the
    pairs' own values."""
    parts = key.split(".")
    entries = data.get("kd_by_pair")
    if parts[0] != "kd" or not isinstance(entries, list):
        return
    if len(parts) > 1:
        fields = {parts[1]}  # kd.<field>
    else:  # the whole mapping, --set kd={...}: the fields it gives
        fields = set(data["kd"]) if isinstance(data.get("kd"), dict) else set()
    kept = [f"{e.get('teacher')} → {e.get('student')} ({', '.join(sorted(fields & set(own)))})"
            for e in entries if (own := _own_kd(e)) is not None and fields & set(own)]
    if kept:
        raise SuiteError(source, where, f"kd_by_pair sets this for {'; '.join(kept)}, and a pair's own value wins, so it would reach "
                         "only the other pairs; to give every pair the same value, --set kd_by_pair=[] first (or edit those entries)")


def unshared(x: Any) -> Any:
    """A copy of parsed YAML in which no two places are the same object (``copy.deepcopy``
    keeps shared references shared)."""
    if isinstance(x, dict):
        return {k: unshared(v) for k, v in x.items()}
    if isinstance(x, list):
        return [unshared(v) for v in x]
    return x
