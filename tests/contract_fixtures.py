"""Helpers for the exit-code contract tests: the real entry point run in-process, and artifacts to break."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from edgevt.cli import main

TRACEBACK = "Traceback (most recent call last)"


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> dict:
        """stdout must hold exactly one JSON object."""
        data = json.loads(self.out)
        assert isinstance(data, dict)
        return data


@contextmanager
def env(**values):
    """Set (or with None, unset) environment variables for one call."""
    saved = {k: os.environ.get(k) for k in values}
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def edgevt(*args: str) -> Result:
    """`edgevt ARGS` through main(), the one exception boundary, with its own stdout/stderr (no pytest fixtures, so
    hypothesis can call it many times in one test)."""
    out, err = io.StringIO(), io.StringIO()
    saved = sys.argv, sys.stdout, sys.stderr
    sys.argv, sys.stdout, sys.stderr = ["edgevt", *args], out, err
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    finally:
        sys.argv, sys.stdout, sys.stderr = saved
    return Result(code, out.getvalue(), err.getvalue())


def snapshot(directory: Path) -> dict[str, str]:
    """Every file under directory with its sha256 (empty if it does not exist)."""
    if not directory.exists():
        return {}
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def check_contract(result: Result, as_json: bool) -> None:
    """What holds for every run: a documented exit code, no traceback, and with --json one object on stdout."""
    assert result.code in (0, 1, 2, 3), result
    assert TRACEBACK not in result.err and TRACEBACK not in result.out, result
    if as_json:
        data = result.json()
        if result.code in (2, 3):
            assert data["exit_code"] == result.code and data["error"] and "hint" in data, data
        if result.code == 1:  # only a parity verdict (or a failed matrix cell) exits 1
            statuses = [data.get("parity", {}).get("status")] + [c.get("status") for c in data.get("cells", [])]
            assert "fail" in statuses, data
    elif result.code == 1:
        assert "parity failed" in result.err or "FAIL" in result.out or " fail" in result.out, result


# --- artifacts -------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """export(model, target) -> the directory of a tiny export (artifact + report), made once per session."""
    from edgevt import pipeline

    root = tmp_path_factory.mktemp("exported")
    made: dict = {}

    def get(model: str = "tiny-swiftformer", target: str = "onnx") -> Path:
        if (model, target) not in made:
            out = root / f"{model}-{target}"
            outcome = pipeline.export(model, target, None, "random", 0, out, {}, {}, None, lambda msg: None)
            made[(model, target)] = Path(outcome.report["artifact"]["path"])
        return made[(model, target)]

    return get


def copy_export(artifact: Path, dest_dir: Path) -> Path:
    """A copy of an export's directory (artifact + report); the artifact's path in the copy."""
    shutil.copytree(artifact.parent, dest_dir, dirs_exist_ok=True)
    report = dest_dir / "report.json"
    data = json.loads(report.read_text())
    data["artifact"]["path"] = str(dest_dir / artifact.name)
    report.write_text(json.dumps(data, indent=2) + "\n")
    return dest_dir / artifact.name


CORRUPTIONS = ("empty", "truncated", "random-bytes", "wrong-format")


def corrupt(kind: str, good: Path, other_format: Path, dest: Path, rng: np.random.Generator) -> Path:
    """dest (named with good's suffix) holding a broken version of good: one of CORRUPTIONS."""
    if good.is_dir():  # .mlpackage
        return _corrupt_package(kind, good, other_format, dest, rng)
    data = good.read_bytes()
    dest.write_bytes({
        "empty": b"",
        "truncated": data[: int(rng.integers(1, len(data)))],
        "random-bytes": rng.bytes(int(rng.integers(1, 4096))),
        "wrong-format": other_format.read_bytes() if other_format.is_file() else b'{"not": "a model"}',
    }[kind])
    return dest


def _corrupt_package(kind: str, good: Path, other_format: Path, dest: Path, rng: np.random.Generator) -> Path:
    weights = Path("Data/com.apple.CoreML/weights/weight.bin")
    spec = Path("Data/com.apple.CoreML/model.mlmodel")
    if kind == "empty":
        dest.mkdir()
        return dest
    shutil.copytree(good, dest)
    if kind == "truncated":  # weights cut short, or gone
        blob = (dest / weights).read_bytes()
        (dest / weights).write_bytes(blob[: int(rng.integers(0, len(blob)))])
    elif kind == "random-bytes":
        (dest / spec).write_bytes(rng.bytes(int(rng.integers(1, 4096))))
    else:  # another format where the model spec should be
        (dest / spec).write_bytes(other_format.read_bytes())
    return dest
