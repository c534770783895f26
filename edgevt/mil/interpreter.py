"""A reference interpreter for saved Core ML mlprograms, so parity can be checked where Apple's runtime is absent.

The .mlpackage is loaded back into a MIL program (coremltools' milproto loader), its ops are put in one
execution plan, and each op runs as an edgevt numpy kernel. fp16 is emulated the way the device stores
it: every op output whose type is fp16 is rounded to float16 (values beyond ±65504 become ±inf). The
arithmetic inside one op runs in float32, so the emulation covers storage rounding and overflow between
ops, not the accumulation order inside an op on a particular chip.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from edgevt.errors import UsageError
from edgevt.mil.kernels import KERNELS, UnsupportedOpError

WEIGHTS_SUBDIR = Path("Data") / "com.apple.CoreML" / "weights"
FP16_MAX = 65504.0


@contextlib.contextmanager
def quiet_coremltools():
    """coremltools prints runtime-proxy and torch-version notices on import off macOS; keep stderr for edgevt's log."""
    logger = logging.getLogger("coremltools")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            import coremltools  # noqa: F401
        yield
    finally:
        logger.setLevel(level)


def one_blas_thread():
    """numpy's BLAS on one thread while the program runs. Its matrix products are small (one sample, op by op), and
    hand-offs between BLAS threads cost more than they save: 2-5x slower with 2 threads on a busy 2-core host
    (reports/parity-cost.md measures both). One thread also makes the result independent of the host's core count."""
    controller = _threadpools()
    return controller.limit(limits=1, user_api="blas") if controller is not None else contextlib.nullcontext()


@functools.lru_cache(maxsize=1)
def _threadpools():
    """The loaded thread pools, found once (scanning the process's libraries costs milliseconds)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # threadpoolctl is a dependency; without it numpy keeps its own setting
        return None
    return ThreadpoolController()


def load_spec(path: Path):
    """The model description (inputs, outputs, metadata) without reading the weights."""
    with quiet_coremltools():
        import coremltools as ct

        try:
            spec = ct.utils.load_spec(str(path))
        except Exception as exc:
            raise UsageError(f"{path} is not a readable .mlpackage ({type(exc).__name__}: {exc})") from None
    if spec.WhichOneof("Type") != "mlProgram":
        raise UsageError(f"{path} is not an mlprogram Core ML model", "edgevt reads mlprogram models; re-export with edgevt")
    return spec


def load_program(path: Path):
    """(spec, MIL program) of a saved .mlpackage, weights included."""
    spec = load_spec(path)
    with quiet_coremltools():
        from coremltools.converters.mil.frontend.milproto.load import load

        try:
            program = load(spec, spec.specificationVersion, str(path / WEIGHTS_SUBDIR))
        except Exception as exc:
            raise UsageError(f"cannot read the program in {path}: {type(exc).__name__}: {exc}",
                             "the package may be truncated or its weight file altered; re-export it") from None
    return spec, program


def dtype_name(var) -> str:
    from coremltools.converters.mil.mil import types

    dtype = var.dtype
    if types.is_tensor(getattr(var, "sym_type", None)):
        dtype = var.sym_type.get_primitive()
    return types.builtin_to_string(dtype)


def _as_value(val, dtype: str):
    if isinstance(val, (str, bool)) or val is None:
        return val
    arr = np.asarray(val)
    if arr.dtype.kind == "f":
        return arr.astype(np.float32)
    if arr.dtype.kind in "iu" and dtype != "bool":
        return arr.astype(np.int64) if arr.ndim else int(arr)
    return arr


@dataclass
class Step:
    op_type: str
    name: str
    kernel: Callable
    consts: dict  # input name -> value known when the program was loaded
    refs: dict  # input name -> var name, or list of (var name | ("const", value)) for variadic inputs
    outputs: list[tuple[str, str]]  # (var name, dtype name)
    release: list[str] = field(default_factory=list)  # env entries last used by this step


class Interpreter:
    """Plan once, run many times. `emulate_fp16=False` runs the same program with fp16 rounding disabled."""

    def __init__(self, program, emulate_fp16: bool = True):
        fn = program.functions["main"]
        self.emulate_fp16 = emulate_fp16
        self.inputs = {name: (dtype_name(var), tuple(var.shape)) for name, var in fn.inputs.items()}
        self.outputs = [var.name for var in fn.outputs]
        self.steps: list[Step] = []
        self.op_counts: dict[str, int] = {}
        self.constexpr_values: dict[str, np.ndarray] = {}
        unknown = sorted({op.op_type for op in fn.operations if op.op_type != "const"
                          and not op.op_type.startswith("constexpr_") and op.op_type not in KERNELS})
        if unknown:
            raise UnsupportedOpError(
                f"the program uses MIL op(s) edgevt's interpreter does not implement: {', '.join(unknown)}",
                "parity through the interpreter cannot be claimed for this model; please report it",
            )
        for op in fn.operations:
            self.op_counts[op.op_type] = self.op_counts.get(op.op_type, 0) + 1
            if op.op_type == "const":
                continue
            if op.op_type.startswith("constexpr_"):
                self._materialize(op)
                continue
            self.steps.append(self._plan(op))
        self._plan_release()

    def _materialize(self, op) -> None:
        """Weight decompression (constexpr_*) depends only on constants: coremltools' decoder of the weight format, once."""
        values = op.materialized_val_inference()
        values = values if isinstance(values, tuple) else (values,)
        for var, value in zip(op.outputs, values):
            self.constexpr_values[var.name] = _as_value(value, dtype_name(var))

    def _resolve(self, var):
        if var.name in self.constexpr_values:
            return ("const", self.constexpr_values[var.name])
        if var.val is not None and var.name not in self.inputs:  # const, or folded by coremltools when loading
            return ("const", _as_value(var.val, dtype_name(var)))
        return ("ref", var.name)

    def _plan(self, op) -> Step:
        consts, refs = {}, {}
        for key, value in op.inputs.items():
            if isinstance(value, (list, tuple)):
                items = [self._resolve(v) for v in value]
                if all(kind == "const" for kind, _ in items):
                    consts[key] = [v for _, v in items]
                else:
                    refs[key] = items
                continue
            kind, resolved = self._resolve(value)
            (consts if kind == "const" else refs)[key] = resolved
        outputs = [(v.name, dtype_name(v)) for v in op.outputs]
        return Step(op.op_type, op.name, KERNELS[op.op_type], consts, refs, outputs)

    def _plan_release(self) -> None:
        last_use: dict[str, int] = {}
        for i, step in enumerate(self.steps):
            for ref in step.refs.values():
                names = [v for kind, v in ref if kind == "ref"] if isinstance(ref, list) else [ref]
                for name in names:
                    last_use[name] = i
        for name, i in last_use.items():
            if name not in self.outputs:
                self.steps[i].release.append(name)

    def store(self, value, dtype: str) -> np.ndarray:
        value = np.asarray(value)
        if dtype == "fp16":
            value = np.asarray(value, dtype=np.float32)  # no copy when it is float32 already
            return value.astype(np.float16).astype(np.float32) if self.emulate_fp16 else value
        if dtype in ("fp32", "fp64"):
            return value.astype(np.float32)
        if dtype == "bool":
            return value.astype(bool)
        return value.astype(np.int32) if value.dtype.kind in "iuf" else value

    def run(self, feeds: dict[str, np.ndarray], on_step: Callable | None = None) -> dict[str, np.ndarray]:
        missing = sorted(set(self.inputs) - set(feeds))
        if missing:
            raise UsageError(f"missing program input(s): {', '.join(missing)}")
        with one_blas_thread():
            return self._run(feeds, on_step)

    def _run(self, feeds: dict[str, np.ndarray], on_step: Callable | None) -> dict[str, np.ndarray]:
        env = {name: self.store(feeds[name], dtype) for name, (dtype, _) in self.inputs.items()}
        for step in self.steps:
            args = dict(step.consts)
            for key, ref in step.refs.items():
                args[key] = [v if kind == "const" else env[v] for kind, v in ref] if isinstance(ref, list) else env[ref]
            try:
                result = step.kernel(args)
            except UnsupportedOpError:
                raise
            except Exception as exc:
                raise UnsupportedOpError(f"MIL op {step.op_type} ({step.name}) failed in edgevt's interpreter: {exc}") from exc
            results = result if isinstance(result, tuple) else (result,)
            for (name, dtype), value in zip(step.outputs, results):
                env[name] = self.store(value, dtype)
            if on_step is not None:
                on_step(step, env)
            for name in step.release:
                env.pop(name, None)
        return {name: np.asarray(env[name], dtype=np.float32) for name in self.outputs}


def fp16_divergence(program, feeds: dict[str, np.ndarray], top: int = 5) -> dict:
    """Where fp16 storage hurts: run the program with and without fp16 rounding and rank ops by the error each adds.

    The error of an op's output (relative L2 against the unrounded run) is compared with the worst error of its
    inputs, so the ranking shows where error is introduced, not where it is merely carried. Overflows are listed
    by the first op whose unrounded output exceeds the fp16 range.
    """
    exact_vals: dict[str, np.ndarray] = {}
    Interpreter(program, emulate_fp16=False).run(feeds, lambda step, env: exact_vals.update(
        {name: env[name] for name, dtype in step.outputs if dtype == "fp16"}))
    errors: dict[str, float] = {}
    ranking, overflows = [], []

    def observe(step, env):
        inputs = [v for ref in step.refs.values() for v in ([x for k, x in ref if k == "ref"] if isinstance(ref, list) else [ref])]
        carried = max((errors.get(v, 0.0) for v in inputs), default=0.0)
        for name, dtype in step.outputs:
            if dtype != "fp16" or name not in exact_vals:
                continue
            exact, got = exact_vals[name], env[name]
            peak = float(np.max(np.abs(exact))) if exact.size else 0.0
            if peak > FP16_MAX and not overflows:
                overflows.append({"op": step.op_type, "name": step.name, "max_abs_fp32": peak})
            denom = float(np.linalg.norm(exact)) or 1.0
            with np.errstate(invalid="ignore", over="ignore"):
                err = float(np.linalg.norm(np.nan_to_num(got - exact, nan=np.inf, posinf=np.inf, neginf=np.inf)) / denom)
            errors[name] = err
            ranking.append({"op": step.op_type, "name": step.name, "rel_error": err, "added": err - carried, "max_abs": peak})

    Interpreter(program, emulate_fp16=True).run(feeds, observe)
    ranking.sort(key=lambda r: -r["added"])
    return {"worst_ops": ranking[:top], "first_overflow": overflows[0] if overflows else None}
