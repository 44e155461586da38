"""Per-task records: what a finished task was made from, with which options, and what it produced.

A record is a small JSON file in ``OUT_DIR/.batch/records/``, written atomically after the task's output is in
place, so it is the mark of completion: a rerun skips a task whose record says ``ok`` for the same input
fingerprint and options while its output still exists, and redoes every other task.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import xxhash

from splatpack.io.atomic import atomic_output

STATE_DIR = ".batch"  # under OUT_DIR: records and the staging area of running tasks


def records_dir(out_dir: Path) -> Path:
    return out_dir / STATE_DIR / "records"


def staging_dir(out_dir: Path) -> Path:
    return out_dir / STATE_DIR / "staging"


def record_path(out_dir: Path, key: str) -> Path:
    return records_dir(out_dir) / f"{key}.json"


def read_record(out_dir: Path, key: str) -> dict | None:
    try:
        return json.loads(record_path(out_dir, key).read_text())
    except (OSError, ValueError):
        return None  # missing or unreadable: the task is redone


def write_record(out_dir: Path, key: str, record: dict) -> None:
    path = record_path(out_dir, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(record, indent=2) + "\n")


DIGEST = "xxh3_128"  # a change detector, not a signature: 10x faster than SHA-256 (0.7 vs 7.4 ms on 12 MB)


def _digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, xxhash.xxh3_128).hexdigest()


def fingerprint(source: Path, previous: dict | None = None) -> dict:
    """``{relative path: {size, mtime_ns, xxh3_128}}`` of a file or of every file under a folder.

    Files whose size and modification time equal ``previous``'s entry keep its hash (rsync's quick check), so a
    rerun over unchanged inputs reads no input twice.
    """
    previous = previous or {}
    files = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else [source]
    out = {}
    for p in files:
        rel = p.name if p == source else p.relative_to(source).as_posix()
        st = p.stat()
        old = previous.get(rel, {})
        same = old.get("size") == st.st_size and old.get("mtime_ns") == st.st_mtime_ns
        digest = old[DIGEST] if same and DIGEST in old else _digest(p)
        out[rel] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, DIGEST: digest}
    return out


def is_finished(record: dict | None, inputs: dict, options: dict, output: Path) -> bool:
    """Whether ``record`` shows this exact task (same input contents, same options) done, its output present."""
    if record is None or record.get("status") != "ok" or record.get("options") != options:
        return False
    # Records of another digest (an older splatpack's SHA-256) never match: those tasks are redone once.
    same_inputs = {k: v.get(DIGEST) for k, v in record.get("inputs", {}).items()} == {
        k: v[DIGEST] for k, v in inputs.items()
    }
    return same_inputs and os.path.exists(output)
