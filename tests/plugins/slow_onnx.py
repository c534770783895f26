"""The ONNX target, but its export waits first: makes the Ray node-loss test's timing deterministic.

When $EDGEVT_TEST_SLOW_DIR is set, the export writes PID.started there (its content: the model's name) as it begins,
then waits $EDGEVT_TEST_SLOW_S seconds (default 5) before exporting as the ONNX target does.
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

from edgevt.exporters import get_target

ONNX = get_target("onnx")


def _slow_export(loaded, *args, **kwargs):
    marker_dir = os.environ.get("EDGEVT_TEST_SLOW_DIR")
    if marker_dir:
        Path(marker_dir, f"{os.getpid()}.started").write_text(loaded.spec.name)
    time.sleep(float(os.environ.get("EDGEVT_TEST_SLOW_S", "5")))
    return ONNX.export(loaded, *args, **kwargs)


TARGET = replace(ONNX, name="slow", export=_slow_export)
