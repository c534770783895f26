"""LiteRT/TFLite `benchmark_model` logs -> numbers, for both tools Google ships under that name.

- The Interpreter-API tool (`tflite/tools/benchmark`, prebuilt as `android_aarch64_benchmark_model`) ends with
  "Inference timings in us: Init: …, First inference: …, Warmup (avg): …, Inference (avg): …".
- The CompiledModel-API tool (`litert/tools/benchmark_model`) ends with a "BENCHMARK RESULTS" block in ms.

Both print one stat line per phase (warmup, then timed runs) from TensorFlow's `StatWithPercentiles`, in µs:
"count=N first=F curr=C min=m max=M avg=A std=S p5=… median=… p95=…" (older TFLite builds stop after std; a
phase whose runs all took the same time prints "count=N curr=C(all same)"). The percentiles are
`values[n * p / 100]` of the sorted run times.
"""

from __future__ import annotations

import re

from edgevt.errors import ExportError

INTERPRETER = "interpreter"
COMPILED_MODEL = "compiled-model"

_NUM = r"-?[\d.]+(?:[eE][+-]?\d+)?|nan|-?inf"
_STAT = re.compile(
    rf"^\s*(?:INFO:\s*)?count=(?P<count>\d+)"
    rf"(?: first=(?P<first>{_NUM}))?(?: curr=(?P<curr>{_NUM}))?(?:\(all same\))?"
    rf"(?: min=(?P<min>{_NUM}) max=(?P<max>{_NUM}) avg=(?P<avg>{_NUM}) std=(?P<std>{_NUM}))?"
    rf"(?: p5=(?P<p5>{_NUM}) median=(?P<median>{_NUM}) p95=(?P<p95>{_NUM}))?"
)
_COMMON = {
    "init_ms": re.compile(rf"Initialized session in ({_NUM})ms"),
    "model_mb": re.compile(rf"The input model file size \(MB\): ({_NUM})"),
    "threads": re.compile(r"Num threads: \[(-?\d+)\]"),
    "replacing": re.compile(r"Replacing (\d+) out of (\d+) node\(s\) with delegate \((\w+)\) node, yielding (\d+) partitions"),
    "applied": re.compile(r"Explicitly applied (\w+) delegate, and the model graph will be (completely|partially) executed"
                          r"(?: by the delegate w/ (\d+) delegate kernels)?"),
}
# Interpreter-API tool (tflite/tools/benchmark/benchmark_model.cc, BenchmarkLoggingListener::OnBenchmarkEnd)
_INTERPRETER = {
    "timings": re.compile(rf"Inference timings in us: Init: ({_NUM}), First inference: ({_NUM}), "
                          rf"Warmup \(avg\): ({_NUM}), Inference \(avg\): ({_NUM})"),
    "memory": re.compile(rf"Memory footprint delta from the start of the tool \(MB\): init=({_NUM}) overall=({_NUM})"),
    "peak": re.compile(rf"Overall peak memory footprint \(MB\) via periodic monitoring: ({_NUM})"),
}
# CompiledModel-API tool (litert/tools/benchmark_litert_model.h, BenchmarkLoggingListener::OnBenchmarkEnd)
_COMPILED = {
    "init": re.compile(rf"Model initialization:\s+({_NUM}) ms"),
    "first": re.compile(rf"(?:Warmup \(first\)|First inference):\s+({_NUM}) ms"),
    "warmup": re.compile(rf"Warmup \(avg\):\s+({_NUM}) ms \((\d+) runs\)"),
    "inference": re.compile(rf"Inference \(avg\):\s+({_NUM}) ms \((\d+) runs\)"),
    "min": re.compile(rf"Inference \(min\):\s+({_NUM}) ms"),
    "max": re.compile(rf"Inference \(max\):\s+({_NUM}) ms"),
    "std": re.compile(rf"Inference \(std\):\s+({_NUM})"),
    "init_mb": re.compile(rf"Init footprint:\s+({_NUM}) MB"),
    "overall_mb": re.compile(rf"Overall footprint:\s+({_NUM}) MB"),
    "peak": re.compile(rf"Peak memory:\s+({_NUM}) MB"),
}
_TROUBLE = ("ERROR", "FATAL", "WARN", "E tflite", "Aborted", "CANNOT LINK", "Segmentation fault")


def _stat(line: str) -> dict | None:
    m = _STAT.search(line)
    if not m:
        return None
    num = {k: float(v) for k, v in m.groupdict().items() if v is not None and k != "count"}
    count = int(m["count"])
    if count and "avg" not in num:  # "count=N curr=C(all same)": every run took C
        curr = num.get("curr", float("nan"))
        num.update({"first": curr, "min": curr, "max": curr, "avg": curr, "std": 0.0})
    return {"count": count, **num}


def _first_matches(text: str, patterns: dict) -> dict:
    found: dict = {}
    for line in text.splitlines():
        for key, pattern in patterns.items():
            if key not in found and (m := pattern.search(line)):
                found[key] = m.groups()
    return found


def tail(text: str, lines: int = 8) -> str:
    """The last non-empty lines of a log, joined with ' | ' (loader and shell errors end up there)."""
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:]) or "(the log is empty)"


def _failure(text: str) -> ExportError:
    trouble = [line.strip() for line in text.splitlines() if line.lstrip().startswith(_TROUBLE) or "not executable" in line
               or "No such file" in line or "Permission denied" in line or "CANNOT LINK" in line]
    detail = "; ".join(trouble[:4]) or "neither an 'Inference timings' line nor a BENCHMARK RESULTS block"
    return ExportError(f"benchmark_model did not finish: {detail}. Last lines of its log: {tail(text)}",
                       "the full log is kept next to the artifact; 'not executable' or 'CANNOT LINK' means the binary "
                       "does not fit this phone (use the android_aarch64 build for arm64-v8a phones)")


def _ms(value: float | None) -> float | None:
    return None if value is None else value / 1e3


def parse_benchmark_output(text: str) -> dict:
    """A benchmark_model log -> the fields edgevt reports (times in ms). Raises ExportError if the run failed."""
    stats = [s for s in map(_stat, text.splitlines()) if s is not None]
    common = _first_matches(text, _COMMON)
    if "BENCHMARK RESULTS" in text:
        out = _compiled_summary(_first_matches(text, _COMPILED))
        if out is None:
            raise _failure(text)
        tool = COMPILED_MODEL
    else:
        found = _first_matches(text, _INTERPRETER)
        if "timings" not in found:
            raise _failure(text)
        out = _interpreter_summary(found)
        tool = INTERPRETER
    warmup, steady = (stats[-2], stats[-1]) if len(stats) >= 2 else (None, stats[-1] if stats else None)
    if steady is not None and steady["count"]:  # stat lines are in µs; the CompiledModel summary rounds to 10 µs
        out["inference"].update(runs=steady["count"], mean_ms=_ms(steady["avg"]),
                                **{k: _ms(steady.get(k)) for k in ("std", "min", "max", "p5", "median", "p95")})
    for key in ("std", "min", "max", "p5", "median", "p95"):
        out["inference"].setdefault(key, None)
    if warmup is not None and warmup["count"]:
        out["warmup"].update(runs=warmup["count"], mean_ms=_ms(warmup["avg"]))
        out["first_inference_ms"] = _ms(warmup["first"])
    out.update({
        "tool": tool,
        "model_mb": float(common["model_mb"][0]) if "model_mb" in common else None,
        "threads": int(common["threads"][0]) if "threads" in common else None,
        "delegation": _delegation(common),
        "warnings": [line.strip() for line in text.splitlines() if line.lstrip().startswith("WARN")][:5],
    })
    if "init_ms" in common:  # "Initialized session in X ms", printed by both tools (the summary block rounds)
        out["init_ms"] = float(common["init_ms"][0])
    return out


def _interpreter_summary(found: dict) -> dict:
    init_us, first_us, warmup_avg_us, avg_us = (float(v) for v in found["timings"])
    memory = None
    if "memory" in found:
        memory = {"init_delta": float(found["memory"][0]), "overall_delta": float(found["memory"][1]),
                  "peak": float(found["peak"][0]) if "peak" in found else None}
    return {"init_ms": init_us / 1e3, "first_inference_ms": first_us / 1e3,
            "warmup": {"runs": None, "mean_ms": warmup_avg_us / 1e3},
            "inference": {"runs": None, "mean_ms": avg_us / 1e3}, "memory_mb": memory}


def _compiled_summary(found: dict) -> dict | None:
    if "inference" not in found:
        return None
    value = {k: float(v[0]) for k, v in found.items()}
    memory = None
    if "init_mb" in found:
        memory = {"init_delta": value["init_mb"], "overall_delta": value.get("overall_mb"), "peak": value.get("peak")}
    return {"init_ms": value.get("init"), "first_inference_ms": value.get("first"),
            "warmup": {"runs": int(found["warmup"][1]) if "warmup" in found else None, "mean_ms": value.get("warmup")},
            "inference": {"runs": int(found["inference"][1]), "mean_ms": value["inference"],
                          **{k: value.get(k) for k in ("std", "min", "max")}},
            "memory_mb": memory}


def _delegation(found: dict) -> dict | None:
    if "replacing" in found:
        done, total, name, parts = found["replacing"]
        return {"delegate": name, "nodes_delegated": int(done), "nodes_total": int(total), "partitions": int(parts)}
    if "applied" in found:
        name, how, kernels = found["applied"]
        return {"delegate": name, "complete": how == "completely", "partitions": int(kernels) if kernels else 1}
    return None
