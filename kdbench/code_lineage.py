"""Training-code changes shown to leave results as they were.

A result, a cached teacher and a mid-training checkpoint are keyed by the fingerprint of the
training code (kdbench.fingerprint), so any change there — a refactor, an option that is off
in every suite — makes every finished result stale and every cached training useless: on a
2-core CPU that is days of runs. A *link* in code_lineage.json says that the code with
fingerprint ``code`` gives bitwise the same trainings as the code with fingerprint ``same_as``,
and how that was shown: tools/verify_code_change.py ran the same probe cells with both and
compared every weight hash, metric and history row. Keys and results then use the oldest
fingerprint of the chain (``canonical``), so they stay current across the change.

A link names the exact fingerprint it vouches for: edit the training code again and the new
fingerprint has no link, so results go stale until that change is verified too. Only a
verification adds links; nothing else writes the file."""

from __future__ import annotations

import json
import re
from pathlib import Path

from .errors import KDBenchError

LINEAGE_FILE = Path(__file__).with_name("code_lineage.json")
# 2: one entry per verification, its links (the files' and the raw bytes' fingerprints, each
# with its older one) sharing the evidence; one line per probe cell. 1 held one entry per link,
# each with a copy of the evidence.
SCHEMA = 2
ABOUT = "Training-code changes verified to train bitwise as before: see kdbench/code_lineage.py and tools/verify_code_change.py."


def load_links(path: Path | None = None) -> dict[str, dict]:
    """fingerprint → its link: the older fingerprint it is the same as (``same_as``), its kind,
    and the verification's evidence (``verified``, ``old_revision``), from ``path`` (default:
    the package's code_lineage.json)."""
    return _links(_read(path or LINEAGE_FILE))


def _read(path: Path) -> dict:
    """The lineage document at ``path`` (an empty one if there is none), its schema checked."""
    if not path.exists():
        return {"schema": SCHEMA, "about": ABOUT, "verifications": []}
    try:
        doc = json.loads(path.read_text())
        if doc["schema"] != SCHEMA:
            raise ValueError(f"schema {doc['schema']}, this kdbench reads {SCHEMA}")
        _links(doc)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise KDBenchError(f"{path}: unreadable code lineage ({e}); restore it from git") from None
    return doc


def _links(doc: dict) -> dict[str, dict]:
    return {link["code"]: {**link, **{k: v for k, v in entry.items() if k != "links"}}
            for entry in doc["verifications"] for link in entry["links"]}


def canonical(fingerprint: str, links: dict[str, dict] | None = None) -> str:
    """The oldest fingerprint verified to train as ``fingerprint`` does (itself if none)."""
    links = load_links() if links is None else links
    seen = {fingerprint}
    while fingerprint in links:
        fingerprint = links[fingerprint]["same_as"]
        if fingerprint in seen:
            raise KDBenchError(f"code lineage: the links form a cycle through {fingerprint[:12]}…")
        seen.add(fingerprint)
    return fingerprint


def add_links(new: list[dict], evidence: dict, path: Path) -> int:
    """Append one verification: its links (each ``code``, ``same_as``, ``kind``) with the
    evidence they share (``verified``, ``old_revision``). Returns how many links were new (a
    fingerprint already linked, or linked to itself, is left out)."""
    doc = _read(path)
    have = set(_links(doc))
    fresh = [link for link in new if link["code"] not in have and link["code"] != link["same_as"]]
    if fresh:
        doc["verifications"].append({"links": fresh, **evidence})
        path.write_text(dumps(doc))
    return len(fresh)


def dumps(doc: dict) -> str:
    """The lineage as indented JSON but each probe cell on one line: a verification adds ~80
    lines, not ~500."""
    text = json.dumps(doc, indent=1, ensure_ascii=False)
    return re.sub(r'\{\n\s+("suite": [^{}]*?)\n\s+\}', lambda m: "{" + " ".join(line.strip() for line in m.group(1).splitlines()) + "}", text) + "\n"


# What a result holds beyond the training's outcome: provenance, keys, paths and clocks. The
# settings are compared through the config's hashes (a recipe field added at its default leaves
# them alone, kdbench.suite_spec.HASHED_WHEN_SET), not through the result's suite_spec, which spells every field.
NOT_TRAINING = frozenset({
    "config", "config_hash", "suite_spec", "fingerprints", "environment", "started_at", "finished_at", "timing", "cost",
    "train_seconds", "epoch_seconds", "max_memory_mib", "cache_key", "from_cache", "location", "root_chosen_by",
})


def training_differences(old: dict, new: dict, where: str = "") -> list[str]:
    """Where two results of one cell differ in what training made (weights' sha256, metrics,
    report, histories) or in their settings (the config's hashes but the code's), provenance and
    times aside: [] means bitwise the same."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        if not where and "config" in old and "config" in new:
            out += training_differences({k: v for k, v in old["config"].items() if k != "code"},
                                        {k: v for k, v in new["config"].items() if k != "code"}, "config.")
        for k in sorted(set(old) | set(new), key=str):
            if k in NOT_TRAINING:
                continue
            if k not in old or k not in new:
                out.append(f"{where}{k}: only in the {'new' if k in new else 'old'} result")
            else:
                out += training_differences(old[k], new[k], f"{where}{k}.")
        return out
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [f"{where.rstrip('.')}: {len(old)} entries, now {len(new)}"]
        return [d for i, (a, b) in enumerate(zip(old, new, strict=True)) for d in training_differences(a, b, f"{where}{i}.")]
    # NaN equals NaN here: the same missing value in both.
    same = old == new or (isinstance(old, float) and isinstance(new, float) and old != old and new != new)
    return [] if same else [f"{where.rstrip('.')}: {old!r} → {new!r}"]
