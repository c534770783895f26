"""Targets that fail the way real converters do, loaded through $EDGEVT_EXTRA_TARGETS by the matrix tests.

segfault: the converter dies of SIGSEGV (a real invalid read, as a native converter bug would);
broken: the converter raises ExportError; sleepy: the converter hangs.
"""

from __future__ import annotations

import ctypes
import time

from edgevt.errors import ExportError
from edgevt.exporters.base import Target
from edgevt.parity import Precision


def _segfault(*_args, **_kwargs):
    ctypes.string_at(0)  # reads address 0: the process dies of SIGSEGV


def _broken(*_args, **_kwargs):
    raise ExportError("converter failed: unsupported operator aten::imaginary", "try another precision")


def _sleepy(*_args, **_kwargs):
    time.sleep(600)


def _target(name, export):
    def no_runner(*_args, **_kwargs):
        raise ExportError(f"{name} has no runner")

    return Target(name=name, suffix=f".{name}", precisions=(Precision.FP32,), options={}, requires=(), install_hint="",
                  export=export, open_runner=no_runner, input_shape=lambda path: [1, 3, 64, 64])


SEGFAULT = _target("segfault", _segfault)
BROKEN = _target("broken", _broken)
SLEEPY = _target("sleepy", _sleepy)
