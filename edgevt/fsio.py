"""Writes that never leave half a file behind and never clobber a good result with a failed one."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def staging_dir(out_dir: Path):
    """A scratch directory on the same filesystem as out_dir (so the final move is an atomic rename).

    If out_dir did not exist and nothing was placed in it, it is removed again: a failed run leaves nothing.
    """
    created = [d for d in [out_dir, *out_dir.parents] if not d.exists()]  # deepest first
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".edgevt-staging-", dir=out_dir))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for directory in created:
            if any(directory.iterdir()):
                break
            directory.rmdir()


def place(src: Path, dest: Path) -> Path:
    """Move a finished artifact into place in one rename; whatever was at dest stays until then."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(src, dest)
    return dest


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
