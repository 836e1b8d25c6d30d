"""Fingerprints of the code that decides a result. A finished result (and a cached teacher)
holds one, and stays current while the training code's fingerprint is the same: an edit of the
code re-runs it, an edit of comments or blank lines does not."""

from __future__ import annotations

import hashlib
import io
import tokenize
from pathlib import Path

CODE_FILES = ("train.py", "augment.py", "graphed.py", "losses.py", "precision.py", "metrics.py", "recompute.py", "models", "data/split.py")
# fp8 training runs through fp8.py too, so it is part of the fingerprint of fp8 cells. Other
# cells only take their (simulated) fp8 evaluation from it, an extra figure beside their own;
# re-running every finished cell for a change there would cost more than it protects.
FP8_CODE_FILES = (*CODE_FILES, "fp8.py")


def code_text(source: str) -> str:
    """Python source without what Python ignores outside strings: comments, trailing spaces
    and blank lines. Lines inside a multi-line string are kept whole (they are its content)."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return source  # not Python we can read: every byte counts
    comment_at: dict[int, int] = {}
    in_string: set[int] = set()
    # Python ≥ 3.12 splits an f-string (≥ 3.14 a t-string) into tokens; older ones read it as
    # one string token. Protect its lines as a whole either way, so the fingerprint is the same
    # on every Python.
    starts = {getattr(tokenize, n) for n in ("FSTRING_START", "TSTRING_START") if hasattr(tokenize, n)}
    ends = {getattr(tokenize, n) for n in ("FSTRING_END", "TSTRING_END") if hasattr(tokenize, n)}
    open_fstrings: list[int] = []
    for tok in tokens:
        if tok.type == tokenize.COMMENT and not open_fstrings:
            comment_at[tok.start[0]] = tok.start[1]
        elif tok.type in starts:
            open_fstrings.append(tok.start[0])
        elif tok.type in ends:
            in_string.update(range(open_fstrings.pop() + 1, tok.end[0] + 1))
        elif tok.start[0] != tok.end[0]:  # a string token over several lines
            in_string.update(range(tok.start[0] + 1, tok.end[0] + 1))
    kept = []
    for number, line in enumerate(source.splitlines(), 1):
        line = line[: comment_at.get(number, len(line))]
        if number in in_string:
            kept.append(line)
        elif line.strip():
            kept.append(line.rstrip())
    return "\n".join(kept)


def _source_files(code_files: tuple[str, ...]) -> list[Path]:
    root = Path(__file__).parent
    files: list[Path] = []
    for name in code_files:
        p = root / name
        files += sorted(p.glob("*.py")) if p.is_dir() else [p]
    return files


def code_fingerprint(code_files: tuple[str, ...] = CODE_FILES) -> str:
    """sha256 over the code of the source files that decide a result: a change there
    invalidates cached teachers and finished cells; an edit of comments or blank lines alone
    does not (``code_text``)."""
    root = Path(__file__).parent
    h = hashlib.sha256()
    for f in _source_files(code_files):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + code_text(f.read_bytes().decode()).encode() + b"\0")
    return h.hexdigest()


def raw_code_fingerprint(code_files: tuple[str, ...] = CODE_FILES) -> str:
    """The fingerprint of results made before 2026-11-26: sha256 over the files' raw bytes,
    comments included. Such a result stays current while the files are byte for byte the same."""
    root = Path(__file__).parent
    h = hashlib.sha256()
    for f in _source_files(code_files):
        h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()
