"""The timing protocol is applied as designed: blocks in alternating order, a pause for idle threads before every
switch of runtime, an untimed wake-up run after it, adaptive stopping. A fake clock makes this exact (no timing)."""

import math

import numpy as np
import pytest

from edgevt import bench
from edgevt.bench import BenchSettings, ci_rel, measure, median_ci, summarize, wait_until_idle
from edgevt.errors import UsageError


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeRunner:
    """Takes `ms` of fake time per run (or the next of a list), and logs its name."""

    def __init__(self, engine, ms, clock, log):
        self.engine, self.ms, self.clock, self.log = engine, ms, clock, log
        self.rng = np.random.default_rng(0)

    def run(self, batch):
        self.log.append(self.engine)
        ms = self.ms() if callable(self.ms) else self.ms
        self.clock.now += ms / 1e3
        return {"y": batch}


def run(specs: dict, settings: BenchSettings, pause_ms: float = 30.0):
    clock, log = Clock(), []

    def pause():
        log.append("pause")
        clock.now += pause_ms / 1e3
        return {"ms": pause_ms, "idle": True}

    openers = [lambda e=e, ms=ms: FakeRunner(e, ms, clock, log) for e, ms in specs.items()]
    timing = measure(openers, np.zeros(1), settings, pause=pause, clock=clock)
    return timing, log, clock


def runs_of(log: list[str]) -> list[tuple[str, int]]:
    """Run-length encoding: [('pause', 1), ('a', 51), ...]."""
    out: list[list] = []
    for item in log:
        if out and out[-1][0] == item:
            out[-1][1] += 1
        else:
            out.append([item, 1])
    return [tuple(x) for x in out]


def test_runtimes_switch_only_after_a_pause_and_an_untimed_wake_up_run():
    timing, log, _ = run({"a": 10.0, "b": 20.0}, BenchSettings(runs=100, warmup=2, min_time_s=0, max_time_s=60))
    blocks = runs_of(log)
    for before, after in zip(blocks, blocks[1:]):
        assert "pause" in (before[0], after[0]), f"{before[0]} ran right after {after[0]} without a pause"
    a, b = timing.reports
    block_a, block_b = round(bench.BLOCK_S * 1e3 / 10), round(bench.BLOCK_S * 1e3 / 20)
    assert timing.protocol["blocks"]["runs"] == [block_a, block_b]
    sampling = blocks[blocks.index(("b", 1 + 2)) + 1:]  # after the opens, a's warm-up, b's wake-up run + 2 warm-up runs
    runtimes = [name for name, _ in sampling if name != "pause"]
    assert runtimes == (["a", "b"] * len(runtimes))[: len(runtimes)] and len(runtimes) >= 3
    # a block after a switch has one untimed run more than it times; a block that continues the same runtime has none
    assert sampling[:4] == [("pause", 1), ("a", block_a + 1), ("pause", 1), ("b", 2 * block_b + 1)]
    assert len(a.samples_ms) % block_a == 0 and len(b.samples_ms) % block_b == 0
    assert a.warm["runs"] >= 100 and b.warm["runs"] >= 100


def test_the_order_of_blocks_alternates_so_each_runtime_leads_every_other_round():
    timing, log, _ = run({"a": 50.0, "b": 50.0, "c": 50.0}, BenchSettings(runs=40, warmup=0, min_time_s=0, max_time_s=60))
    after_warmup = [name for name, _ in runs_of(log) if name != "pause"][3 + 2:]  # 3 opens, then warm-up switches b, c
    assert after_warmup[:7] == ["a", "b", "c", "b", "a", "b", "c"]
    assert timing.protocol["blocks"]["rounds"] == bench.MIN_BLOCKS_CI  # 10 runs per block: 4 rounds give >= 40, the CI needs 5 blocks


def test_every_pause_is_recorded():
    timing, log, _ = run({"a": 10.0, "b": 20.0}, BenchSettings(runs=10, warmup=1, min_time_s=0, max_time_s=60), pause_ms=40)
    pause = timing.protocol["pause"]
    assert pause["count"] == log.count("pause") and pause["median_ms"] == 40 and pause["not_idle"] == 0


def test_stops_once_every_median_is_known_to_the_target_after_min_time():
    timing, _, _ = run({"a": 10.0, "b": 25.0}, BenchSettings(runs=10, warmup=2, min_time_s=6.0, max_time_s=60))
    sampling = timing.protocol["sampling"]
    assert sampling["stopped_by"] == "ci" and 6.0 <= sampling["seconds"] < 6.0 + 2 * bench.BLOCK_S + 0.2
    assert sampling["reached_ci95_rel"] == pytest.approx([0.0, 0.0], abs=1e-12)


def test_stops_at_max_time_when_the_median_is_not_yet_known_and_says_so():
    rng = np.random.default_rng(1)
    timing, _, _ = run({"a": lambda: float(rng.uniform(20, 35)), "b": 20.0}, BenchSettings(runs=10, warmup=2, min_time_s=0, max_time_s=4))
    sampling = timing.protocol["sampling"]
    assert sampling["stopped_by"] == "max_time" and 4 <= sampling["seconds"] < 4 + 2.0  # the round in flight is finished
    assert sampling["reached_ci95_rel"][0] > 0.02 and sampling["ci_over"].startswith("block medians")


def test_min_runs_are_a_floor():
    timing, _, _ = run({"a": 100.0}, BenchSettings(runs=37, warmup=0, min_time_s=0, max_time_s=600))
    assert timing.reports[0].warm["runs"] >= 37 and timing.protocol["sampling"]["stopped_by"] == "ci"


def test_cold_numbers_are_load_and_first_inference():
    timing, _, _ = run({"a": 10.0}, BenchSettings(runs=5, warmup=0, min_time_s=0, max_time_s=60))
    cold = timing.reports[0].cold
    assert cold["load_ms"] == 0 and cold["first_inference_ms"] == pytest.approx(10.0)


def test_max_time_shorter_than_min_time_is_a_usage_error():
    with pytest.raises(UsageError, match="--max-time"):
        BenchSettings(min_time_s=5, max_time_s=1)


def test_summary_statistics_of_known_samples():
    s = summarize(np.arange(1, 101, dtype=float))
    assert s["runs"] == 100 and s["p50_ms"] == pytest.approx(50.5) and s["min_ms"] == 1
    assert s["p90_ms"] == pytest.approx(90.1) and s["p99_ms"] == pytest.approx(99.01)
    assert s["mean_ms"] == pytest.approx(50.5) and s["std_ms"] == pytest.approx(np.std(np.arange(1, 101), ddof=1))
    assert s["median_ci95_ms"] == [41.0, 61.0]  # ranks 50 ± 1.96·√100/2 = 40.2 … 59.8 -> the 41st and 61st values
    assert s["median_ci95_rel"] == pytest.approx(10.5 / 50.5)


def test_median_ci_brackets_the_median_and_narrows_with_more_samples():
    rng = np.random.default_rng(0)
    small, large = rng.normal(10, 1, 20), rng.normal(10, 1, 2000)
    (lo_s, hi_s), (lo_l, hi_l) = median_ci(small), median_ci(large)
    assert lo_s <= np.median(small) <= hi_s and lo_l <= np.median(large) <= hi_l
    assert hi_l - lo_l < hi_s - lo_s and ci_rel(large) < ci_rel(small)
    assert ci_rel([5.0]) == math.inf


def fake_pause(cpu_per_window: list[float | None]):
    clock, readings = Clock(), iter(cpu_per_window)
    total = [0.0]

    def sleep(s):
        clock.now += s

    def cpu():
        step = next(readings, 0.0)
        if step is None:
            return None
        total[0] += step
        return total[0]

    return lambda: wait_until_idle(clock, sleep, cpu), clock


def test_the_pause_lasts_until_the_other_threads_stop_spinning():
    busy = bench.IDLE_WINDOW_S  # a whole core for a whole window: spinning
    pause, clock = fake_pause([0.0] + [busy] * 5 + [0.0])
    got = pause()
    assert got["idle"] is True and got["ms"] == pytest.approx((bench.PAUSE_MIN_S + 6 * bench.IDLE_WINDOW_S) * 1e3)


def test_the_pause_gives_up_at_its_cap_when_a_thread_never_idles():
    pause, _ = fake_pause([0.0] + [bench.IDLE_WINDOW_S] * 10_000)
    got = pause()
    assert got["idle"] is False and bench.PAUSE_MAX_S * 1e3 <= got["ms"] < bench.PAUSE_MAX_S * 1e3 + 2 * bench.IDLE_WINDOW_S * 1e3


def test_the_pause_is_fixed_where_thread_clocks_cannot_be_read():
    pause, _ = fake_pause([None])
    got = pause()
    assert got["idle"] is None and got["ms"] == pytest.approx(bench.PAUSE_FALLBACK_S * 1e3)


def test_other_threads_cpu_sees_a_busy_thread():
    import threading
    import time

    if bench.other_threads_cpu_s() is None:
        pytest.skip("per-thread CPU clocks are Linux only")
    spun, done = threading.Event(), threading.Event()

    def spin():  # burn 30 ms of this thread's CPU however busy the machine is, then stay alive, idle
        while time.thread_time() < 0.03:
            pass
        spun.set()
        done.wait()

    worker = threading.Thread(target=spin)
    before = bench.other_threads_cpu_s()
    worker.start()
    assert spun.wait(60)
    burned = bench.other_threads_cpu_s() - before
    done.set()
    worker.join()
    assert burned >= 0.025


def test_pipeline_latency_records_the_protocol_threads_and_efficiency(monkeypatch, tmp_path):
    """export, `bench --model` and the matrix worker all time through pipeline.benchmark, which runs bench.measure."""
    import torch

    from edgevt import pipeline
    from matrix_fixtures import FakeTarget as Target

    calls = []
    real = bench.measure
    monkeypatch.setattr(bench, "measure", lambda *a, **k: calls.append(a) or real(*a, **k))
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    lat = pipeline.benchmark(Target, tmp_path / "m.onnx", np.zeros((1, 64), np.float32),
                             BenchSettings(runs=5, warmup=1, min_time_s=0, max_time_s=0.2, threads=1), lambda m: None,
                             torch.nn.Linear(64, 32))
    assert len(calls) == 1 and len(calls[0][0]) == 2  # the artifact and torch eager, in one protocol run
    assert lat["protocol"]["name"] == bench.PROTOCOL and lat["protocol"]["engines"] == ["onnxruntime-cpu", "torch-eager"]
    assert lat["threading"]["OMP_WAIT_POLICY"].startswith("unset") and lat["threading"]["torch-eager"]["num_threads"] == 1
    bound = lat["compute_bound"]
    assert bound["macs"] == 64 * 32 and bound["peak_gflops"] == 100  # pinned by conftest's EDGEVT_GEMM_GFLOPS
    assert lat["efficiency"] == pytest.approx(bound["bound_ms"] / lat["warm"]["p50_ms"])
    assert lat["baseline"]["efficiency"] == pytest.approx(bound["bound_ms"] / lat["baseline"]["warm"]["p50_ms"])


def test_min_time_alone_above_the_default_cap_raises_the_cap_but_an_explicit_cap_must_be_longer():
    from edgevt.bench import QUICK_DEFAULTS
    from edgevt.profiles import bench_settings

    assert bench_settings(None, QUICK_DEFAULTS, min_time_s=20.0).max_time_s == 20.0
    assert bench_settings(None, min_time_s=5.0).max_time_s == BenchSettings.max_time_s  # 30 s: already longer
    with pytest.raises(UsageError, match="--max-time 3 s is shorter than --min-time 20 s"):
        bench_settings(None, QUICK_DEFAULTS, min_time_s=20.0, max_time_s=3.0)


def test_cli_rejects_a_cap_below_the_floor(tmp_path):
    import sys

    from edgevt.cli import main

    sys_argv = sys.argv
    sys.argv = ["edgevt", "bench", str(tmp_path / "m.onnx"), "--min-time", "5", "--max-time", "1"]
    try:
        with pytest.raises(SystemExit) as info:
            main()
    finally:
        sys.argv = sys_argv
    assert info.value.code == 2


class HostStates:
    """A fake host that changes speed every `period_s` of fake time: every run then takes `factor` times as long."""

    def __init__(self, clock: Clock, period_s: float, factors: tuple[float, ...]):
        self.clock, self.period_s, self.factors = clock, period_s, factors

    def scale(self) -> float:
        return self.factors[int(self.clock.now / self.period_s) % len(self.factors)]


def run_on(host_period_s: float, factors: tuple[float, ...], ms: dict, settings: BenchSettings):
    clock, log = Clock(), []
    host = HostStates(clock, host_period_s, factors)

    def pause():
        clock.now += 0.03
        return {"ms": 30.0, "idle": True}

    openers = [lambda e=e, m=m: FakeRunner(e, lambda m=m: m * host.scale(), clock, log) for e, m in ms.items()]
    return measure(openers, np.zeros(1), settings, pause=pause, clock=clock)


def test_ratios_are_paired_per_round_so_a_host_that_changes_speed_does_not_bias_them():
    # runtime b is exactly 2x a; the host runs at 1x or 1.8x, changing state every 1.5 s, so the two runtimes see the
    # slow state in different shares of their samples and the ratio of the two medians is off, the paired ratio is not
    timing = run_on(1.5, (1.0, 1.8), {"a": 10.0, "b": 20.0}, BenchSettings(runs=10, warmup=0, min_time_s=12, max_time_s=12))
    paired = timing.protocol["paired"]
    assert paired["vs"] == "a" and paired["ratios"][0] is None
    b = paired["ratios"][1]
    assert b["rounds"] == timing.protocol["blocks"]["rounds"] and b["median"] == pytest.approx(2.0, rel=1e-9)
    of_p50s = timing.reports[1].warm["p50_ms"] / timing.reports[0].warm["p50_ms"]
    assert abs(of_p50s / 2.0 - 1) > 0.05  # the unpaired ratio is what the paired one protects against
    host = timing.protocol["host"]
    assert host["unsteady"] and "changed speed" in host["note"] and host["block_spread_p90_p10"][0] == pytest.approx(1.8)


def test_a_steady_host_gets_no_note_and_a_to_a_pairs_to_one():
    timing = run_on(1.0, (1.0,), {"a": 10.0, "b": 10.0}, BenchSettings(runs=10, warmup=0, min_time_s=3, max_time_s=3))
    assert timing.protocol["paired"]["ratios"][1]["median"] == pytest.approx(1.0)
    assert not timing.protocol["host"]["unsteady"] and "note" not in timing.protocol["host"]


def test_the_paired_ratio_fails_a_runtime_that_is_really_slower():
    # the check can fail: b really 10% slower is reported as 1.10, not absorbed into the host's noise
    timing = run_on(3.1, (1.0, 1.5), {"a": 10.0, "b": 11.0}, BenchSettings(runs=10, warmup=0, min_time_s=8, max_time_s=8))
    assert timing.protocol["paired"]["ratios"][1]["median"] == pytest.approx(1.1, rel=0.02)


def run_on_states(pattern: tuple[bool, ...], period_s: float, ms: dict, slow: dict, seconds: float):
    """A fake host that is slow in the periods where `pattern` (cycled) is True; there each runtime takes slow[e] times
    as long, as 2-thread runtimes slow by different factors when two vCPUs share one core."""
    clock, log = Clock(), []

    def factor(e):
        return slow[e] if pattern[int(clock.now / period_s) % len(pattern)] else 1.0

    def pause():
        clock.now += 0.03
        return {"ms": 30.0, "idle": True}

    openers = [lambda e=e, m=m: FakeRunner(e, lambda e=e, m=m: m * factor(e), clock, log) for e, m in ms.items()]
    return measure(openers, np.zeros(1), BenchSettings(runs=10, warmup=0, min_time_s=seconds, max_time_s=seconds),
                   pause=pause, clock=clock)


def _figures(timing):
    from edgevt.pipeline import speedup

    reports = [r.to_dict() for r in timing.reports]
    ratio, how = speedup(timing.protocol, reports)
    return ([r["warm"]["p50_ms"] for r in reports], [r["warm"]["full_speed"]["p50_ms"] for r in reports],
            ratio, how["full_speed"]["median"])


def test_figures_at_full_speed_repeat_when_the_host_spends_a_different_share_of_time_slow():
    # the same runtimes (torch 25 ms, artifact 10 ms; shared-core state: 1.3x and 1.8x), once on a host slow 40% of
    # the time and once 60%: medians over all samples and the all-rounds speed-up move, the full-speed figures do not
    ms, slow = {"art": 10.0, "torch": 25.0}, {"art": 1.8, "torch": 1.3}
    mostly_fast = run_on_states((False, True, False, True, False), 1.3, ms, slow, 20)
    mostly_slow = run_on_states((True, False, True, False, True), 1.3, ms, slow, 20)
    (p50_a, full_a, ratio_a, full_ratio_a), (p50_b, full_b, ratio_b, full_ratio_b) = map(_figures, (mostly_fast, mostly_slow))
    assert p50_b[0] / p50_a[0] - 1 > 0.05  # what a plain median does on such a host
    assert full_a == pytest.approx([10.0, 25.0]) and full_b == pytest.approx([10.0, 25.0])
    assert full_ratio_a == pytest.approx(2.5) and full_ratio_b == pytest.approx(2.5)
    blocks = mostly_fast.reports[0].warm["full_speed"]
    assert 0 < blocks["blocks"] < blocks["of_blocks"]  # the slow state's blocks were left out, and the report says how many


def test_figures_at_full_speed_still_see_a_runtime_that_is_really_slower():
    # the check can fail: an artifact really 10% slower in the second run is 10% slower at full speed too
    slow = {"art": 1.8, "torch": 1.3}
    before = run_on_states((False, True), 1.3, {"art": 10.0, "torch": 25.0}, slow, 20)
    after = run_on_states((False, True), 1.3, {"art": 11.0, "torch": 25.0}, slow, 20)
    (_, full_a, _, ratio_a), (_, full_b, _, ratio_b) = map(_figures, (before, after))
    assert full_b[0] / full_a[0] == pytest.approx(1.1) and ratio_a / ratio_b == pytest.approx(1.1)


def test_on_a_steady_host_every_block_runs_at_full_speed():
    timing = run_on_states((False,), 1.0, {"art": 10.0, "torch": 25.0}, {"art": 1.0, "torch": 1.0}, 4)
    for report in timing.reports:
        full = report.warm["full_speed"]
        assert full["blocks"] == full["of_blocks"] >= 3 and full["p50_ms"] == report.warm["p50_ms"]
    assert timing.protocol["paired"]["full_speed"][1]["rounds"] == timing.protocol["blocks"]["rounds"]


def test_the_stop_rule_needs_enough_blocks_and_judges_block_medians_not_samples():
    # a host slow for the first 3 s, then fast: the samples of the first seconds all agree, so a CI over samples would
    # stop at min_time (1 s) on the slow state; over block medians sampling goes on until the change is outvoted
    clock, log = Clock(), []
    slow_until = 3.0

    def pause():
        clock.now += 0.03
        return {"ms": 30.0, "idle": True}

    openers = [lambda e=e, m=m: FakeRunner(e, lambda m=m: m * (1.8 if clock.now < slow_until else 1.0), clock, log)
               for e, m in {"art": 10.0, "torch": 25.0}.items()]
    timing = measure(openers, np.zeros(1), BenchSettings(runs=10, warmup=0, min_time_s=1.0, max_time_s=60), pause=pause, clock=clock)
    sampling = timing.protocol["sampling"]
    assert sampling["stopped_by"] == "ci" and sampling["seconds"] > slow_until
    assert timing.protocol["blocks"]["rounds"] >= bench.MIN_BLOCKS_CI
    assert [r.warm["p50_ms"] for r in timing.reports] == pytest.approx([10.0, 25.0])
