"""ANE pre-flight: static checks of a Core ML program against the Neural Engine's known placement rules.

The rules come from Apple's ml-ane-transformers guidance, coremltools issues and the SwiftFormer authors
(shared FACTS.md): rank <= 5, no gather, fixed shapes, fp16 only, and ops known to fall back. It is an
estimate from the program alone; on a Mac, `edgevt bench` adds MLComputePlan's actual placement.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

MAX_ANE_RANK = 5
LARGE_AXIS = 16384  # longest axis the ANE is reported to take; longer ones are split or fall back
LARGE_TENSOR_BYTES = 64 * 2**20
SKIP = {"const"}

OFF_ANE_OPS = {
    "gather": "gather runs off the Neural Engine",
    "gather_nd": "gather runs off the Neural Engine",
    "gather_along_axis": "gather runs off the Neural Engine",
    "scatter": "scatter runs off the Neural Engine",
    "scatter_nd": "scatter runs off the Neural Engine",
    "scatter_along_axis": "scatter runs off the Neural Engine",
    "reduce_l2_norm": "L2 normalisation (F.normalize) is not supported by the Neural Engine (SwiftFormer authors)",
    "non_zero": "data-dependent output shape",
    "while_loop": "control flow runs on the CPU",
    "cond": "control flow runs on the CPU",
}
HINTS = {
    "gather-roll": "torch.roll becomes gather: express the cyclic shift as two slices and a concat, or pre-shift once",
    "gather": "replace indexing with slices/concat, or move the lookup out of the model",
    "reduce_l2_norm": "compute x * rsqrt(sum(x^2) + eps) with mul/reduce_sum/rsqrt (ANE-friendly) as the SwiftFormer authors did",
    "rank": "reshape to rank <= 4 (B, C, 1, S) around the op, e.g. window partition as reshape+transpose on 4-D tensors",
    "dynamic": "export with fixed shapes (edgevt's default); use several fixed-shape models instead of one flexible one",
    "fp32": "this op computes in fp32 inside an fp16 program and will run on the CPU/GPU; check why it was kept fp32",
    "int": "integer arithmetic runs on the CPU; fold it into constants at export time",
    "large": "split the tensor (e.g. per attention head) so every axis stays below 16384 and tensors stay small",
    "control": "unroll or remove data-dependent control flow",
}


@dataclass
class Finding:
    check: str
    op_type: str
    detail: str
    hint: str
    ops: list[str] = field(default_factory=list)
    off_ane: bool = True  # False: a performance warning, the op may still run on the ANE

    def to_dict(self) -> dict:
        return {"check": self.check, "op_type": self.op_type, "count": len(self.ops), "off_ane": self.off_ane,
                "detail": self.detail, "hint": self.hint, "examples": self.ops[:5]}


@dataclass
class Preflight:
    ops_total: int
    findings: list[Finding]
    max_rank: int
    fp16_program: bool
    flagged_ops: set[str] = field(default_factory=set)

    @property
    def ane_share(self) -> float | None:
        """Share of ops expected on the ANE (None for a program without ops). It counts ops: the static program gives
        no cost model, and each op off the ANE also costs a hand-over between devices. On a Mac, `edgevt preflight`
        adds MLComputePlan's share of Core ML's estimated cost."""
        return 1.0 - len(self.flagged_ops) / self.ops_total if self.ops_total else None

    def to_dict(self) -> dict:
        share = self.ane_share
        return {"engine": "edgevt static analysis", "ops": self.ops_total, "ops_off_ane": len(self.flagged_ops),
                "ane_share_estimate": None if share is None else round(share, 4), "max_rank": self.max_rank,
                "fp16_program": self.fp16_program, "findings": [f.to_dict() for f in self.findings]}


def _shape(var) -> tuple:
    try:
        return tuple(var.shape)
    except Exception:
        return ()


def _is_static(dim) -> bool:
    return isinstance(dim, (int, np.integer))


def _roll_shift(indices) -> int | None:
    """The shift s when gather indices are arange(n) rolled by s (what torch.roll lowers to), else None."""
    if indices is None:
        return None
    idx = np.asarray(indices).reshape(-1).astype(np.int64)
    n = idx.size
    if n < 2:
        return None
    idx = idx % n
    shift = int((-idx[0]) % n)
    return shift if shift and np.array_equal(idx, (np.arange(n) - shift) % n) else None


def preflight(program) -> Preflight:
    from edgevt.mil.interpreter import dtype_name

    fn = program.functions["main"]
    ops = [op for op in fn.operations if op.op_type not in SKIP and not op.op_type.startswith("constexpr_")]
    fp16 = any(dtype_name(v) == "fp16" for op in ops for v in op.outputs)
    groups: dict[tuple, Finding] = {}
    flagged: set[str] = set()
    max_rank = 0

    def flag(key: tuple, op, new: Finding, off_ane: bool = True) -> None:
        finding = groups.setdefault(key, new)
        finding.ops.append(op.name)
        if off_ane and finding.off_ane:
            flagged.add(op.name)

    for name, var in fn.inputs.items():
        if not all(_is_static(d) for d in _shape(var)):
            groups[("dynamic", name)] = Finding("dynamic shape", "input", f"input {name} has a flexible shape {_shape(var)}",
                                                HINTS["dynamic"], [name])
    last = fn.outputs
    for op in ops:
        outs = list(op.outputs)
        if all(v.val is not None for v in outs):
            continue  # folded into a constant when the model is compiled
        ranks = [len(_shape(v)) for v in outs]
        max_rank = max([max_rank, *ranks])
        if op.op_type.startswith("gather"):
            shift = _roll_shift(op.inputs["indices"].val) if "indices" in op.inputs else None
            if shift is not None:
                flag(("gather-roll",), op, Finding("gather", op.op_type, "gather with cyclic-shift indices: torch.roll "
                                                           "(Swin's shifted windows)", HINTS["gather-roll"]))
            else:
                flag(("gather",), op, Finding("gather", op.op_type, OFF_ANE_OPS[op.op_type], HINTS["gather"]))
        elif op.op_type in OFF_ANE_OPS:
            hint = HINTS.get(op.op_type, HINTS["control"] if op.op_type in ("while_loop", "cond") else HINTS["gather"])
            flag(("op", op.op_type), op, Finding("unsupported op", op.op_type, OFF_ANE_OPS[op.op_type], hint))
        if any(r > MAX_ANE_RANK for r in ranks):
            flag(("rank", op.op_type), op, Finding("rank > 5", op.op_type, f"outputs a rank-{max(ranks)} tensor", HINTS["rank"]))
        if any(not all(_is_static(d) for d in _shape(v)) for v in outs):
            flag(("dynamic",), op, Finding("dynamic shape", "any", "output shape is not fixed (flexible input shape)", HINTS["dynamic"]))
        dtypes = {dtype_name(v) for v in outs}
        is_edge_cast = op.op_type == "cast" and (any(v in last for v in outs) or any(
            x.name in fn.inputs for x in op.inputs.values() if hasattr(x, "name")))
        if fp16 and "fp32" in dtypes and not is_edge_cast:
            flag(("fp32", op.op_type), op, Finding("fp32 island", op.op_type, "computes in fp32 inside an fp16 program", HINTS["fp32"]))
        if dtypes & {"int32", "int16", "int8", "uint8"} and op.op_type not in ("shape",):
            flag(("int", op.op_type), op, Finding("integer compute", op.op_type, "integer output", HINTS["int"]))
        for v in outs:
            shape = _shape(v)
            if shape and all(_is_static(d) for d in shape):
                size = int(np.prod(shape)) * (2 if dtype_name(v) == "fp16" else 4)
                if max(shape) > LARGE_AXIS or size > LARGE_TENSOR_BYTES:
                    flag(("large", op.op_type), op, Finding("large tensor", op.op_type, f"tensor of shape {shape}",
                                                                    HINTS["large"], off_ane=False), off_ane=False)
                    break
    if not fp16 and ops:
        everything = Finding("fp32 program", "all", "the Neural Engine computes in fp16 only: an fp32 program runs on the CPU/GPU",
                             "export at fp16 (edgevt's Core ML default) for the Neural Engine", [op.name for op in ops])
        groups[("fp32-program",)] = everything
        flagged.update(everything.ops)
    findings = sorted(groups.values(), key=lambda f: (not f.off_ane, -len(f.ops)))
    return Preflight(len(ops), findings, max_rank, fp16, flagged)


def markdown(pre: dict) -> str:
    share = pre["ane_share_estimate"]
    lines = [
        f"ANE pre-flight ({pre['engine']}): {pre['ops']} ops, {pre['ops_off_ane']} expected off the Neural Engine "
        f"(estimated ANE share {'n/a' if share is None else f'{share:.0%}'} of ops), max tensor rank {pre['max_rank']}.",
        "",
    ]
    if not pre["findings"]:
        return "\n".join(lines + ["No findings: every op follows the Neural Engine's placement rules."])
    lines += ["| check | op | count | off ANE | detail | hint |", "|---|---|---:|---|---|---|"]
    for f in pre["findings"]:
        lines.append(f"| {f['check']} | {f['op_type']} | {f['count']} | {'yes' if f['off_ane'] else 'maybe'} | {f['detail']} | {f['hint']} |")
    return "\n".join(lines)
