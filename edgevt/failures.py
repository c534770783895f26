"""How a failure reaches the user: one line and a hint on stderr, one JSON error object on stdout with --json, and
for an unexpected error its traceback saved to a log (or shown with -v). Used by the CLI's one exception boundary."""

from __future__ import annotations

import json
import traceback
from pathlib import Path

import click

from edgevt.capture import save_traceback, saved_traceback
from edgevt.errors import EXIT_RUNTIME, EXIT_USAGE, EdgevtError, first_line


def _json_error(message: str, hint: str | None, code: int, kind: str, log: Path | None) -> None:
    payload = {"error": message, "exit_code": code, "hint": hint, "type": kind, "log": str(log) if log else None}
    click.echo(json.dumps(payload))


def _fail(args: list[str], message: str, hint: str | None, code: int, kind: str, log: Path | None = None) -> int:
    if "--json" in args:
        _json_error(message, hint, code, kind, log)
    lines = [f"error: {message}"] + ([f"  hint: {hint}"] if hint else [])
    if log:
        lines.append(f"  log: {log} (the full traceback; edgevt -v shows it on stderr)")
    click.echo("\n".join(lines), err=True)
    return code


def usage_failure(exc: click.ClickException, args: list[str]) -> int:
    """Click's own usage errors (unknown option, value out of range, missing argument) are bad usage: exit 2."""
    if "--json" in args:
        command = exc.ctx.command_path if getattr(exc, "ctx", None) else "edgevt"
        _json_error(exc.format_message(), f"run `{command} --help`", EXIT_USAGE, "UsageError", None)
    exc.show()
    return EXIT_USAGE


def edgevt_failure(exc: EdgevtError, args: list[str]) -> int:
    """A runtime error's log holds its cause (e.g. the converter's own traceback); bad input needs none."""
    log = saved_traceback(exc) if exc.exit_code == EXIT_RUNTIME else None
    return _fail(args, exc.message, exc.hint, exc.exit_code, type(exc).__name__, log)


def unexpected_failure(exc: Exception, args: list[str]) -> int:
    """Exit 3 with one line, never a traceback on the terminal (unless -v asked for it)."""
    if "-v" in args or "--verbose" in args:
        traceback.print_exception(type(exc), exc, exc.__traceback__)
        log = None
    else:
        log = saved_traceback(exc) or save_traceback(exc)
    hint = "this is a bug in edgevt or in a library it calls; please report it with the traceback"
    return _fail(args, f"unexpected {type(exc).__name__}: {first_line(exc)}", hint, EXIT_RUNTIME, type(exc).__name__, log)
