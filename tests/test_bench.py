import numpy as np
import pytest

from edgevt.bench import BenchSettings, bootstrap_median_ci, measure, measure_interleaved, summarize


class FakeRunner:
    def __init__(self, engine, log):
        self.engine, self.log = engine, log

    def run(self, batch):
        self.log.append(self.engine)
        return {"y": batch}


def test_summary_statistics_of_known_samples():
    s = summarize(np.arange(1, 101, dtype=float))
    assert s["runs"] == 100 and s["p50_ms"] == pytest.approx(50.5) and s["min_ms"] == 1
    assert s["p90_ms"] == pytest.approx(90.1) and s["p99_ms"] == pytest.approx(99.01)
    assert s["mean_ms"] == pytest.approx(50.5) and s["std_ms"] == pytest.approx(np.std(np.arange(1, 101), ddof=1))


def test_bootstrap_interval_brackets_the_median_and_narrows_with_more_samples():
    rng = np.random.default_rng(0)
    small, large = rng.normal(10, 1, 20), rng.normal(10, 1, 2000)
    lo_s, hi_s = bootstrap_median_ci(small)
    lo_l, hi_l = bootstrap_median_ci(large)
    assert lo_s <= np.median(small) <= hi_s and lo_l <= np.median(large) <= hi_l
    assert hi_l - lo_l < hi_s - lo_s


def test_measure_counts_cold_warmup_and_runs():
    calls = []
    rep = measure(lambda: FakeRunner("a", calls), np.zeros(1), BenchSettings(runs=7, warmup=3))
    assert len(calls) == 1 + 3 + 7  # first inference, warmup, timed
    assert rep.warm["runs"] == 7 and len(rep.samples_ms) == 7 and rep.engine == "a"
    assert rep.cold["load_ms"] >= 0 and rep.peak_rss_mb > 0


def test_min_time_keeps_running_past_runs():
    calls = []
    rep = measure(lambda: FakeRunner("a", calls), np.zeros(1), BenchSettings(runs=1, warmup=0, min_time_s=0.05))
    assert rep.warm["runs"] > 1


def test_interleaved_runners_alternate():
    calls = []
    a, b = measure_interleaved([lambda: FakeRunner("a", calls), lambda: FakeRunner("b", calls)], np.zeros(1), BenchSettings(runs=3, warmup=0))
    assert calls[-6:] == ["a", "b"] * 3
    assert a.engine == "a" and b.engine == "b" and a.warm["runs"] == b.warm["runs"] == 3
