"""Other libraries' output goes to a log file; edgevt's own output goes to the terminal.

torch, torchao, absl/oneDNN, the converters and the runtimes print warnings, logging lines, progress bars and
native messages while edgevt works. Inside `Capture`, file descriptors 1 and 2 point at a log file (os.dup2), so
native writes land there as well as Python's (prints go through sys.stdout/sys.stderr, which write to those
descriptors; warnings and the root logger's records are written to the log directly). edgevt writes its progress and results through `terminal_out()` and `terminal_err()`,
which keep the streams the command started with. On exit the descriptors and streams are restored, the traceback
of an unexpected error is added to the log, and the CLI may move the log beside the report it wrote.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
import warnings
from pathlib import Path

LOG_DIR_ENV = "EDGEVT_LOG_DIR"
KEEP_LOGS = 50  # run logs kept in the log directory; older ones are deleted

_active: list["Capture"] = []
_fd_streams: dict[int, object] = {}
_saved_traceback: list = [None, None]  # [the last exception whose traceback was saved, the log it went to]


def log_dir() -> Path:
    if os.environ.get(LOG_DIR_ENV):
        return Path(os.environ[LOG_DIR_ENV])
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / "edgevt" / "logs"


def terminal_out():
    """Where edgevt's results go: the command's stdout, even while other output is captured."""
    return _active[-1].out if _active else sys.stdout


def terminal_err():
    """Where edgevt's progress and errors go: the command's stderr, even while other output is captured."""
    return _active[-1].err if _active else sys.stderr


def saved_traceback(exc: BaseException) -> Path | None:
    """The log a capture wrote this exception's traceback to, if any."""
    return _saved_traceback[1] if _saved_traceback[0] is exc else None


def new_log(command: str):
    """(path, open text file) of a fresh run log; a fallback in the temp directory if the log directory is not writable."""
    import tempfile

    name = f"{time.strftime('%Y%m%d-%H%M%S')}-{command}-{os.getpid()}.log"
    for directory in (log_dir(), Path(tempfile.gettempdir()) / "edgevt-logs"):
        try:
            directory.mkdir(parents=True, exist_ok=True)
            _prune(directory)
            path = directory / name
            return path, open(path, "a", buffering=1, encoding="utf-8", errors="backslashreplace")
        except OSError:
            continue
    return None, None


def _prune(directory: Path) -> None:
    logs = sorted(directory.glob("*.log"), key=lambda p: p.stat().st_mtime)
    for old in logs[: max(0, len(logs) - KEEP_LOGS + 1)]:
        old.unlink(missing_ok=True)


def save_traceback(exc: BaseException, command: str = "edgevt") -> Path | None:
    """Write exc's traceback to a new run log (for errors raised outside a capture); the path, or None."""
    path, log = new_log(command)
    if log is None:
        return None
    with log:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=log)
    _saved_traceback[:] = [exc, path]
    return path


def _backed_by(stream, fd: int) -> bool:
    try:
        return stream is not None and stream.fileno() == fd
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError and a ValueError
        return False


def _fd_stream(fd: int):
    """A text stream on descriptor fd that lives as long as the process (handlers bound to it never see it closed)."""
    original = sys.__stdout__ if fd == 1 else sys.__stderr__
    if _backed_by(original, fd):
        return original
    if fd not in _fd_streams:
        _fd_streams[fd] = open(fd, "w", buffering=1, encoding="utf-8", errors="backslashreplace", closefd=False)
    return _fd_streams[fd]


def _flush_native() -> None:
    """C stdio buffers of native libraries, so their text lands in the log and not on the restored stdout."""
    try:
        import ctypes

        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):
        pass


class Capture:
    """Redirect descriptors 1 and 2 (and sys.stdout/sys.stderr) to a run log for the duration of a command.

    enabled=False (edgevt -v) leaves everything on the terminal. `keep_as` (set by the command once it knows
    where its report went) is where the log is moved when the command ends without an error; an empty log is
    deleted. Nested captures are no-ops: the outer one captures.
    """

    def __init__(self, command: str, enabled: bool = True):
        self.command = command
        self.enabled = enabled
        self.path: Path | None = None
        self.keep_as: Path | None = None
        self.out, self.err = sys.stdout, sys.stderr
        self._log = None
        self._header = 0

    @property
    def active(self) -> bool:
        return self._log is not None

    def __enter__(self) -> "Capture":
        if not self.enabled or _active:
            return self
        self.path, self._log = new_log(self.command)
        if self._log is None:
            return self
        self._log.write(f"# edgevt {self.command}: {' '.join(sys.argv[1:])}\n# {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        self._header = self._log.tell()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        self._streams = (sys.stdout, sys.stderr)
        self._saved = {fd: os.dup(fd) for fd in (1, 2)}
        self.out = self._terminal(sys.stdout, 1)
        self.err = self._terminal(sys.stderr, 2)
        for fd in (1, 2):
            os.dup2(self._log.fileno(), fd)
        sys.stdout, sys.stderr = _fd_stream(1), _fd_stream(2)
        self._showwarning = warnings.showwarning
        warnings.showwarning = self._warning
        self._handler = logging.StreamHandler(self._log)
        self._handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(self._handler)
        _active.append(self)
        return self

    def _warning(self, message, category, filename, lineno, file=None, line=None) -> None:
        self._log.write(warnings.formatwarning(message, category, filename, lineno, line))

    def _terminal(self, stream, fd: int):
        """The stream edgevt writes to: the original one, or a new one on the saved descriptor if it wrote to fd."""
        if not _backed_by(stream, fd):
            return stream  # e.g. a test runner's buffer: descriptor-level capture does not touch it
        encoding = getattr(stream, "encoding", None) or "utf-8"
        return open(self._saved[fd], "w", buffering=1, encoding=encoding, errors="backslashreplace", closefd=False)

    def __exit__(self, exc_type, exc, tb) -> bool:
        if not self.active:
            return False
        try:
            if exc is not None and _worth_a_traceback(exc):
                self._log.write(f"\n# {self.command} failed:\n")
                traceback.print_exception(exc_type, exc, tb, file=self._log)
                _saved_traceback[:] = [exc, self.path]
        finally:
            self._restore()
        self._settle(ok=exc is None or _is_exit(exc))
        return False

    def _restore(self) -> None:
        warnings.showwarning = self._showwarning
        logging.getLogger().removeHandler(self._handler)
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        _flush_native()
        for fd, saved in self._saved.items():
            os.dup2(saved, fd)
        sys.stdout, sys.stderr = self._streams
        for term, original in ((self.out, self._streams[0]), (self.err, self._streams[1])):
            if term is not original:
                term.close()  # closefd=False: only marks it closed, so a stray write fails instead of reusing the descriptor
        for saved in self._saved.values():
            os.close(saved)
        self.out, self.err = self._streams
        self._log.close()
        self._log = None
        _active.remove(self)

    def _settle(self, ok: bool) -> None:
        """Move the log beside the report, or drop it if nothing was said; after an error it stays in the log directory."""
        empty = self.path.stat().st_size <= self._header
        if ok and self.keep_as is not None:
            try:
                if empty:
                    self.keep_as.unlink(missing_ok=True)  # an older run's log no longer describes the report
                else:
                    _move(self.path, self.keep_as)
                    self.path = self.keep_as
            except OSError:
                pass  # the log stays in the log directory
        if empty:
            self.path.unlink(missing_ok=True)
            self.path = None

    def has_output(self) -> bool:
        """Whether other libraries said anything so far (the log holds more than its header)."""
        if not self.active:
            return False
        self._log.flush()
        sys.stdout.flush()
        sys.stderr.flush()
        return self.path.stat().st_size > self._header


def _move(src: Path, dest: Path) -> None:
    import shutil

    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(src, dest)
    except OSError:  # another filesystem
        shutil.copyfile(src, dest)
        src.unlink(missing_ok=True)


def _is_exit(exc: BaseException) -> bool:
    import click

    return isinstance(exc, click.exceptions.Exit)


def _worth_a_traceback(exc: BaseException) -> bool:
    """Bad input (exit 2) and control flow need no traceback; runtime errors (their converter's cause) and bugs do."""
    import click

    from edgevt.errors import EXIT_USAGE, EdgevtError

    if isinstance(exc, (click.exceptions.Exit, click.ClickException, click.Abort, KeyboardInterrupt)):
        return False
    return not (isinstance(exc, EdgevtError) and exc.exit_code == EXIT_USAGE)
