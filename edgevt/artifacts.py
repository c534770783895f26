"""Is an artifact what its suffix claims? Checked before any work, the same way by validate, bench and preflight.

The rule for a corrupt artifact: a file that is missing, empty, truncated, random bytes or another format than
its suffix says is bad input, exit 2. An artifact that reads as its format but that the runtime then fails to load
or run is a runtime error, exit 3.
"""

from __future__ import annotations

from pathlib import Path

from edgevt.errors import UsageError, first_line

REEXPORT = "pass the file `edgevt export` wrote, or export it again"


def check_artifact(target, path: Path) -> None:
    """Raise UsageError (exit 2) unless path holds a readable artifact of target's format."""
    if not path.exists():
        raise UsageError(f"artifact {path} does not exist", "pass the path that `edgevt export` printed")
    check = _CHECKS.get(target.name)
    problem = check(path) if check else None
    if problem:
        raise UsageError(f"{path} is not a readable {target.suffix} artifact: {problem}", REEXPORT)


def _single_file(path: Path) -> str | None:
    if not path.is_file():
        return "it is a directory, not a file"
    if path.stat().st_size == 0:
        return "the file is empty"
    return None


def _onnx(path: Path) -> str | None:
    import onnx

    problem = _single_file(path)
    if problem:
        return problem
    try:
        onnx.checker.check_model(str(path))  # parses the protobuf and checks the graph (truncation, random bytes, other formats)
        graph = onnx.load(str(path), load_external_data=False).graph
    except (onnx.checker.ValidationError, OSError, ValueError) as exc:
        return first_line(exc)
    initializers = {i.name for i in graph.initializer}
    if not [i for i in graph.input if i.name not in initializers] or not graph.output:
        return "the graph has no input or no output"
    return None


def _tflite(path: Path) -> str | None:
    from ai_edge_litert.interpreter import Interpreter

    problem = _single_file(path)
    if problem:
        return problem
    try:
        Interpreter(model_path=str(path), num_threads=1)  # verifies the flatbuffer; allocates nothing yet
    except ValueError as exc:
        return first_line(exc)
    return None


def _coreml(path: Path) -> str | None:
    from edgevt.mil.interpreter import load_program

    load_program(path)  # raises UsageError naming what is unreadable: manifest, model spec or weights
    return None


_CHECKS = {"onnx": _onnx, "tflite": _tflite, "coreml": _coreml}


def check_input_shape(target, path: Path, sample_shape: tuple) -> None:
    """An artifact of another model (another input size) is bad input for this reference, not a runtime crash."""
    expected = list(sample_shape[1:])
    got = target.input_shape(path)
    fixed_mismatch = any(isinstance(d, int) and d > 0 and d != e for d, e in zip(got[1:], expected))  # symbolic dims match anything
    if len(got) != len(sample_shape) or fixed_mismatch:
        raise UsageError(f"{path.name} takes input {got}, but the model's samples are {[1, *expected]}",
                         "check --model: the artifact was exported from another model or input size")
