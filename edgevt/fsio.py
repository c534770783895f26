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


STAGING_PREFIX = ".edgevt-staging-"


def writable_problem(directory: Path) -> str | None:
    """Why files cannot be created in directory (or in the ancestor it would be made in), else None.

    Probed with an unnamed temporary file (O_TMPFILE on Linux), so the probe leaves nothing behind.
    """
    existing = next((d for d in [directory, *directory.parents] if d.exists()), Path.cwd())
    if not existing.is_dir():
        return f"{existing} is a file, not a directory"
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        return f"cannot create files in {existing}: {exc.strerror or exc}"
    return None


def _staging_owner(name: str) -> int | None:
    """The process id in a staging directory's name (.edgevt-staging-PID-XXXX); None for names without one."""
    pid, sep, _ = name[len(STAGING_PREFIX):].partition("-")
    return int(pid) if sep and pid.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_staging(out_dir: Path) -> list[str]:
    """Staging directories whose run is gone (killed, or an older edgevt that did not name its process): removed."""
    if not out_dir.is_dir():
        return []
    removed = []
    for entry in sorted(out_dir.glob(STAGING_PREFIX + "*")):
        owner = _staging_owner(entry.name)
        if owner is not None and _alive(owner):
            continue
        remove_path(entry)
        removed.append(entry.name)
    return removed


def remove_path(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


@contextmanager
def staging_dir(out_dir: Path):
    """A scratch directory on the same filesystem as out_dir (so the final move is an atomic rename).

    If out_dir did not exist and nothing was placed in it, it is removed again: a failed run leaves nothing.
    Its name carries this process's id, so a later run can tell the leftovers of a killed run from a live one.
    """
    created = [d for d in [out_dir, *out_dir.parents] if not d.exists()]  # deepest first
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{os.getpid()}-", dir=out_dir))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for directory in created:
            if any(directory.iterdir()):
                break
            directory.rmdir()


def place(src: Path, dest: Path) -> Path:
    """Move a finished artifact into place in one rename; whatever was at dest stays until then.

    A directory artifact (.mlpackage) cannot replace a non-empty directory in one rename: the old one is
    renamed aside first, the new one moved in, and the old one deleted only after that succeeded.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    if not (src.is_dir() and dest.is_dir()):
        os.replace(src, dest)
        return dest
    aside = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
    os.replace(dest, aside / dest.name)
    try:
        os.replace(src, dest)
    except BaseException:
        os.replace(aside / dest.name, dest)
        shutil.rmtree(aside, ignore_errors=True)
        raise
    shutil.rmtree(aside, ignore_errors=True)
    return dest


def _files(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())


def sha256_file(path: Path) -> str:
    """Digest of a file, or of a directory artifact (relative paths and contents of every file in it)."""
    h = hashlib.sha256()
    for file in _files(path):
        if file != path:
            h.update(str(file.relative_to(path)).encode() + b"\0")
        with open(file, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def size_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in _files(path))
