"""The host's compute bound: 2·MACs at the fp32 GEMM peak, probed once per host and thread count, and efficiency."""

from __future__ import annotations

import json

import pytest

from edgevt import compute_bound as cb
from edgevt.errors import UsageError


@pytest.fixture
def probes(monkeypatch):
    """Probes that return set rates and count their calls; no pinned rates."""
    monkeypatch.delenv(cb.ENV, raising=False)
    rates = {"onnxruntime": 300.0, "torch": 150.0}
    calls = []

    def fake(name):
        def probe(threads):
            calls.append((name, threads))
            return rates[name]
        return probe

    monkeypatch.setattr(cb, "probe_onnxruntime", fake("onnxruntime"))
    monkeypatch.setattr(cb, "probe_torch", fake("torch"))
    monkeypatch.setattr(cb.os, "getloadavg", lambda: (0.2, 0.2, 0.2))
    return rates, calls


def quiet(*_):
    return {"ms": 0.0, "idle": True}


def test_the_bound_is_two_flops_per_mac_at_the_faster_librarys_peak(tmp_path, probes):
    section = cb.bound(1.5e9, 2, lambda m: None, root=tmp_path)
    assert section["status"] == "measured" and section["peak_by"] == "onnxruntime"
    assert section["bound_ms"] == pytest.approx(2 * 1.5e9 / 300e9 * 1e3)  # 10 ms
    assert section["gemm_gflops"]["torch"] == 150.0 and section["threads"] == 2
    assert cb.efficiency(section, 20.0) == pytest.approx(0.5)
    assert cb.efficiency(section, 0) is None and cb.efficiency({"status": "skipped"}, 20.0) is None


def test_the_probe_runs_once_per_host_and_thread_count(tmp_path, probes):
    _, calls = probes
    first = cb.gemm_throughput(2, lambda m: None, tmp_path, pause=quiet)
    again = cb.gemm_throughput(2, lambda m: None, tmp_path, pause=quiet)
    assert calls == [("onnxruntime", 2), ("torch", 2)]
    assert not first["cached"] and again["cached"] and again["gflops"] == first["gflops"]
    cb.gemm_throughput(1, lambda m: None, tmp_path, pause=quiet)
    assert calls[2:] == [("onnxruntime", 1), ("torch", 1)]  # another thread count is another probe
    assert json.loads(cb.cache_file(2, tmp_path).read_text())["threads"] == 2


def test_a_probe_from_a_busy_host_is_redone_when_quieter_keeping_the_best_rate(tmp_path, probes, monkeypatch):
    rates, calls = probes
    monkeypatch.setattr(cb.os, "getloadavg", lambda: (6.0, 6.0, 6.0))
    rates.update(onnxruntime=40.0, torch=60.0)
    cb.gemm_throughput(2, lambda m: None, tmp_path, pause=quiet)
    assert cb.gemm_throughput(2, lambda m: None, tmp_path, pause=quiet)["cached"]  # as busy as before: no new probe
    monkeypatch.setattr(cb.os, "getloadavg", lambda: (0.3, 1.0, 2.0))
    rates.update(onnxruntime=350.0, torch=20.0)
    again = cb.gemm_throughput(2, lambda m: None, tmp_path, pause=quiet)
    assert len(calls) == 4 and again["gflops"] == {"onnxruntime": 350.0, "torch": 60.0}


def test_pinned_rates_skip_the_probe(tmp_path, probes, monkeypatch):
    _, calls = probes
    monkeypatch.setenv(cb.ENV, "onnxruntime=377,torch=170")
    section = cb.bound(1e9, 2, lambda m: None, root=tmp_path)
    assert calls == [] and section["peak_gflops"] == 377 and section["probe"]["source"] == cb.ENV
    monkeypatch.setenv(cb.ENV, "fast")
    with pytest.raises(UsageError, match=cb.ENV):
        cb.bound(1e9, 2, lambda m: None, root=tmp_path)


def test_unknown_macs_skip_the_bound_and_say_why(tmp_path, probes):
    section = cb.bound(None, 2, lambda m: None, root=tmp_path)
    assert section["status"] == "skipped" and "--model" in section["reason"]


def test_the_real_probes_measure_a_positive_rate(monkeypatch):
    monkeypatch.setattr(cb, "PROBE_S", 0.05)
    assert cb.probe_onnxruntime(1, n=128) > 0.01 and cb.probe_torch(1, n=128) > 0.01


def test_an_fp32_runtime_faster_than_the_bound_proves_the_probe_read_low_and_reprobes(tmp_path, probes):
    """A shared host can be in its slow state for the whole probe: the cached rate is then half the peak, and an fp32
    runtime 'beats' the bound. That cannot be, so the probe runs again, and the cache keeps the better rate."""
    rates, calls = probes
    rates.update(onnxruntime=150.0, torch=100.0)  # probed while the host ran slow
    section = cb.bound(1.5e9, 2, lambda m: None, root=tmp_path)  # 20 ms
    assert cb.recheck(section, [25.0, 30.0], 2, lambda m: None, tmp_path, pause=quiet) is section  # slower: no probe
    assert len(calls) == 2
    rates.update(onnxruntime=300.0)  # the host's real peak
    fresh = cb.recheck(section, [30.0, 14.0], 2, lambda m: None, tmp_path, pause=quiet)
    assert len(calls) == 4 and fresh["bound_ms"] == pytest.approx(10.0)
    assert fresh["reprobed"] == {"reason": "an fp32 runtime beat the cached probe's bound", "fastest_fp32_p50_ms": 14.0,
                                 "previous_bound_ms": pytest.approx(20.0)}
    assert cb.efficiency(fresh, 14.0) < 1.0
    assert json.loads(cb.cache_file(2, tmp_path).read_text())["gflops"]["onnxruntime"] == 300.0


def test_a_pinned_rate_is_never_reprobed(tmp_path, probes, monkeypatch):
    _, calls = probes
    monkeypatch.setenv(cb.ENV, "100")
    section = cb.bound(1e9, 2, lambda m: None, root=tmp_path)
    assert cb.recheck(section, [1.0], 2, lambda m: None, tmp_path, pause=quiet) is section and calls == []
