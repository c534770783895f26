"""Every user-facing failure is an EdgevtError: a message that says what to do, and an exit code.

Exit codes (documented in `edgevt --help` and the README):
  0  success
  1  parity failed (the export does not compute what the reference computes)
  2  bad usage or bad input (unknown model, bad profile, unreadable file, ...)
  3  export or runtime error (a converter or runtime failed, a runtime is missing)
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_PARITY = 1
EXIT_USAGE = 2
EXIT_RUNTIME = 3


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first non-empty line of an exception's message (converters raise pages of text)."""
    lines = [line for line in str(exc).strip().splitlines() if line.strip()]
    return (lines[0] if lines else type(exc).__name__)[:limit]


class EdgevtError(Exception):
    """Base of every error edgevt reports to a user."""

    exit_code = EXIT_RUNTIME

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class UsageError(EdgevtError):
    """Bad input from the user: a name, a path, a value."""

    exit_code = EXIT_USAGE


class UnknownModelError(UsageError):
    def __init__(self, name: str, suggestions: list[str]):
        hint = (
            f"did you mean {', '.join(suggestions)}?"
            if suggestions
            else "run `edgevt list` to see every registered variant"
        )
        super().__init__(f"unknown model {name!r}", hint)
        self.name = name
        self.suggestions = suggestions


class ProfileError(UsageError):
    def __init__(self, path: str, key: str, problem: str):
        super().__init__(f"profile {path}: key {key!r}: {problem}")
        self.path = path
        self.key = key


class WeightsError(UsageError):
    """Weights cannot be found or read (Hub unreachable, bad path, untrusted format)."""


class ExportError(EdgevtError):
    """A converter failed."""

    exit_code = EXIT_RUNTIME


class RuntimeUnavailable(EdgevtError):
    """A target's runtime or converter is not installed or cannot run on this machine."""

    exit_code = EXIT_RUNTIME


class RuntimeCannotLoad(RuntimeUnavailable):
    """The artifact was written, but this machine's runtime cannot load it (e.g. a Core ML specification newer than
    this macOS): `export` keeps it as NAME.unverified.EXT instead of deleting it."""


class ParityError(EdgevtError):
    """An export does not match its reference; carries the whole report."""

    exit_code = EXIT_PARITY

    def __init__(self, report):
        failures = "; ".join(report.failures) or "see report"
        super().__init__(f"parity failed: {failures}")
        self.report = report
