"""The macOS-only Core ML paths, on Linux: fake coremltools objects stand in for Apple's runtime.

What the fakes reproduce comes from coremltools 9.0 (models/model.py, coremlpython/CoreMLPython.mm): a package
Core ML cannot compile leaves `MLModel.__proxy__` None with only a RuntimeWarning; a spec newer than the binding
supports leaves it None silently; `get_available_compute_devices()` lists MLCPUComputeDevice/MLGPUComputeDevice/
MLNeuralEngineComputeDevice objects (an Intel Mac has no Neural Engine).
"""

import json
import sys
import types
import warnings
from types import SimpleNamespace

import numpy as np
import pytest

ct = pytest.importorskip("coremltools")

from edgevt import bench, commands, envinfo, report  # noqa: E402
from edgevt.errors import RuntimeCannotLoad, UsageError  # noqa: E402
from edgevt.exporters import coreml, coreml_runtime  # noqa: E402
from edgevt.mil.preflight import Preflight, markdown  # noqa: E402

COMPILE_ERROR = 'Error compiling model: "Failed to parse the model specification. Error: Unable to parse ML Program: unknown opset iOS18."'


@pytest.fixture(scope="module")
def package(tmp_path_factory):
    """A tiny iOS18 (specification version 9) mlprogram with an RGB image input and two HF-style outputs."""
    from coremltools.converters.mil import Builder as mb

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, 4, 4))], opset_version=ct.target.iOS18)
    def prog(image):
        return mb.relu(x=image, name="last_hidden_state"), mb.reduce_mean(x=image, axes=[2, 3], name="pooler_output")

    model = ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS18,
                       inputs=[ct.ImageType(name="image", shape=(1, 3, 4, 4), color_layout=ct.colorlayout.RGB)])
    path = tmp_path_factory.mktemp("mac") / "tiny-image.mlpackage"
    model.save(str(path))
    return path


class MLCPUComputeDevice:
    pass


class MLGPUComputeDevice:
    pass


class MLNeuralEngineComputeDevice:
    total_core_count = 16


def fake_mlmodel(proxy=None, warning=None, devices=(MLCPUComputeDevice, MLGPUComputeDevice, MLNeuralEngineComputeDevice)):
    """coremltools' MLModel as Core ML on a Mac leaves it: a loaded model (proxy) or no proxy and coremltools' warning.
    Constructions with other arguments (ct.convert's) stay the real thing."""

    class FakeMLModel(ct.models.MLModel):
        predictions: list = []
        last_predict_ns = None

        def __init__(self, model, compute_units=ct.ComputeUnit.ALL, **kwargs):
            super().__init__(model, compute_units=compute_units, **kwargs)
            if kwargs:
                return
            self.__proxy__ = proxy
            if warning:
                warnings.warn("You will not be able to run predict() on this Core ML model. Underlying exception "
                              f"message was: {warning}", RuntimeWarning)

        @property
        def load_duration_in_nano_seconds(self):
            return 40_000_000

        @property
        def last_predict_duration_in_nano_seconds(self):
            return self.last_predict_ns

        def get_compiled_model_path(self):
            return "/tmp/fake.mlmodelc"

        def predict(self, data):
            type(self).predictions.append(data)
            self.last_predict_ns = 2_500_000
            return {o.name: np.full((1, 3), 7.0) for o in self.get_spec().description.output}

        @classmethod
        def get_available_compute_devices(cls):
            return [d() for d in devices]

    return FakeMLModel


@pytest.fixture
def mac(monkeypatch):
    """This process is a Mac on macOS 14.5 whose Core ML binding imports."""
    monkeypatch.setattr(coreml_runtime, "binding_error", lambda: None)
    monkeypatch.setattr(coreml_runtime.platform, "mac_ver", lambda: ("14.5", ("", "", ""), "arm64"))
    monkeypatch.delenv(coreml_runtime.ENGINE_ENV, raising=False)
    return monkeypatch


def test_missing_proxy_is_exit_3_with_spec_version_macos_and_core_ml_message(mac, package):
    mac.setattr(ct.models, "MLModel", fake_mlmodel(proxy=None, warning=COMPILE_ERROR))
    with pytest.raises(RuntimeCannotLoad) as err:
        coreml_runtime.open_runner(package)
    message = err.value.message
    assert err.value.exit_code == 3
    assert "specification version 9 (iOS18 / macOS15) needs macOS 15 or newer" in message and "macOS 14.5" in message
    assert "unknown opset iOS18" in message
    assert f"{coreml_runtime.ENGINE_ENV}=interpreter edgevt validate {package}" in err.value.hint


def test_spec_newer_than_the_binding_is_caught_through_real_coremltools(mac, package):
    # coremltools' own MLModel: with a binding that supports specification version 8, it keeps no proxy and says nothing
    import coremltools.models.model as model_module

    class OldBinding:
        @staticmethod
        def maximum_supported_specification_version():
            return 8

    mac.setattr(model_module, "_MLModelProxy", OldBinding)
    with pytest.raises(RuntimeCannotLoad, match="specification version 9") as err:
        coreml_runtime.load_mlmodel(package, "ALL")
    assert "supports specification versions up to 8" in err.value.message


def test_spec_versions_map_to_ios_and_macos():
    assert coreml_runtime.spec_targets(7) == ("iOS16 / macOS13", "13")
    assert coreml_runtime.spec_targets(9) == ("iOS18 / macOS15", "15")
    assert coreml_runtime.spec_targets(99)[1] is None


def test_runtime_needs_the_binding_to_import_not_just_exist(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.delenv(coreml_runtime.ENGINE_ENV, raising=False)
    real_import = coreml_runtime.importlib.import_module

    def broken(name, *args):
        if name == "coremltools.libcoremlpython":
            raise ImportError("dlopen(libcoremlpython.so): incompatible architecture (have 'x86_64', need 'arm64')")
        return real_import(name, *args)

    monkeypatch.setattr(coreml_runtime.importlib, "import_module", broken)
    assert not coreml_runtime.runtime_available()
    reason = coreml.TARGET.latency_unavailable()
    assert "does not import" in reason and "incompatible architecture" in reason and "needs macOS" not in reason
    monkeypatch.setitem(sys.modules, "coremltools.libcoremlpython", types.ModuleType("coremltools.libcoremlpython"))
    monkeypatch.setattr(coreml_runtime.importlib, "import_module", real_import)
    assert coreml_runtime.runtime_available() and coreml.TARGET.latency_unavailable() is None


def test_forcing_the_interpreter_on_a_mac_does_not_say_needs_macos(mac):
    mac.setenv(coreml_runtime.ENGINE_ENV, "interpreter")
    reason = coreml.TARGET.latency_unavailable()
    assert reason.startswith(f"{coreml_runtime.ENGINE_ENV}=interpreter") and "needs macOS" not in reason
    assert coreml_runtime.compute_plan(__file__)["reason"].startswith(f"{coreml_runtime.ENGINE_ENV}=interpreter")
    assert commands._parity_engine("coreml") == f"mil-interpreter ({coreml_runtime.ENGINE_ENV}=interpreter)"


def test_image_pixels_reach_core_ml_exactly():
    pixels = np.random.default_rng(0).integers(0, 256, (3, 5, 7)).astype(np.float32)
    image = coreml_runtime.to_image(pixels, "image")
    assert image.mode == "RGB" and np.array_equal(np.asarray(image).transpose(2, 0, 1), pixels)


@pytest.mark.parametrize("value", [-0.4, 12.5, 255.5, 256.0, np.nan])
def test_image_values_that_are_not_pixels_are_refused_not_clipped(value):
    pixels = np.zeros((3, 4, 4), dtype=np.float32)
    pixels[1, 2, 3] = value
    with pytest.raises(UsageError, match="whole numbers") as err:
        coreml_runtime.to_image(pixels, "image")
    assert "not normalised tensors" in err.value.hint


def test_runner_reads_names_and_kind_from_the_spec_and_times_core_ml_itself(mac, package):
    fake = fake_mlmodel(proxy=object())
    mac.setattr(ct.models, "MLModel", fake)
    runner = coreml_runtime.open_runner(package, compute_units="CPU_AND_NE")
    batch = np.random.default_rng(1).integers(0, 256, (2, 3, 4, 4)).astype(np.float32)
    out = runner.run(batch)
    assert runner.engine == "coreml-runtime:CPU_AND_NE"
    assert list(out) == ["last_hidden_state", "pooler_output"] and out["pooler_output"].shape == (2, 3)
    fed = [p["image"] for p in fake.predictions]
    assert [np.asarray(img).transpose(2, 0, 1).tolist() for img in fed] == batch.tolist()
    assert runner.engine_ms == [5.0]  # two samples, Core ML's 2.5 ms each
    assert runner.cold_details["load_ms"] == 40.0 and runner.cold_details["compile_ms"] == pytest.approx(
        runner.cold_details["open_ms"] - 40.0)
    with pytest.raises(UsageError, match="whole numbers"):
        runner.run(batch / 255.0)


def test_bench_report_separates_compile_load_and_core_mls_own_time(mac, package):
    mac.setattr(ct.models, "MLModel", fake_mlmodel(proxy=object()))
    batch = np.full((1, 3, 4, 4), 128.0, dtype=np.float32)
    settings = bench.BenchSettings(runs=5, warmup=2, threads=8, min_time_s=0.0, max_time_s=0.5)
    lat = bench.measure([lambda: coreml_runtime.open_runner(package)], batch, settings, pause=lambda: {"ms": 0.0, "idle": True}).reports[0].to_dict()
    assert lat["cold"]["load_ms"] == 40.0 and lat["cold"]["compile_ms"] is not None
    assert lat["cold"]["first_inference_predict_only_ms"] == 2.5
    assert lat["warm"]["predict_only"]["p50_ms"] == 2.5 and lat["warm"]["predict_only"]["runs"] == lat["warm"]["runs"] >= 5
    assert lat["warm"]["predict_only"]["source"] == coreml_runtime.PREDICT_SOURCE
    assert lat["settings"]["threads"] is None and "Core ML schedules its own threads" in lat["settings"]["threads_note"]
    assert lat["runtime"]["compute_devices"] == {"status": "measured", "available": ["CPU", "GPU", "ANE"], "neural_engine": True,
                                                 "ane_cores": 16}
    assert lat["notes"] == [coreml_runtime.MAC_ANE_NOTE]
    rep = report.new_report("bench", model={}, target="coreml", precision="fp16", artifact={"path": str(package)},
                            latency={**lat, "status": "measured"}, environment={})
    md = report.markdown(rep)
    assert "Core ML's own predict time" in md and "not an iPhone's" in md and "Cold start: compile" in md
    assert "None threads" not in md and "None threads" not in commands.summary_text(rep, None)


def test_an_intel_mac_says_it_has_no_neural_engine(mac, package):
    mac.setattr(ct.models, "MLModel", fake_mlmodel(proxy=object(), devices=(MLCPUComputeDevice, MLGPUComputeDevice)))
    runner = coreml_runtime.open_runner(package, compute_units="CPU_AND_NE")
    assert runner.runtime_info["compute_devices"]["neural_engine"] is False
    assert "this Mac has no Neural Engine" in runner.notes[0] and "CPU_AND_NE runs on the CPU only" in runner.notes[0]
    assert "ALL runs on CPU and GPU" in coreml_runtime.open_runner(package, compute_units="ALL").notes[0]
    runner = coreml_runtime.open_runner(package, compute_units="CPU_ONLY")
    assert runner.notes == [coreml_runtime.MAC_ANE_NOTE]


def test_compute_devices_before_macos_14_are_unknown(mac):
    class OldMac:
        @classmethod
        def get_available_compute_devices(cls):
            raise RuntimeError("MLComputeDevice is only available on macOS >= 14.0")

    mac.setattr(ct.models, "MLModel", OldMac)
    assert coreml_runtime.available_compute_devices() == {"status": "unknown",
                                                          "reason": "MLComputeDevice is only available on macOS >= 14.0"}


def _op(name):
    return SimpleNamespace(operator_name=name)


def test_ane_share_is_weighted_by_core_mls_estimated_cost():
    ops = [_op("const"), _op("conv"), _op("conv"), _op("softmax"), _op("gather")]
    device = {"conv": MLNeuralEngineComputeDevice(), "softmax": MLNeuralEngineComputeDevice(), "gather": MLCPUComputeDevice()}
    weight = {"conv": 0.1, "softmax": 0.1, "gather": 0.7}
    summary = coreml_runtime.summarize_placement(
        ops, lambda op: None if op.operator_name == "const" else SimpleNamespace(preferred_compute_device=device[op.operator_name]),
        lambda op: SimpleNamespace(weight=weight.get(op.operator_name, 0.0)))
    assert summary["ane_share"] == 0.75 and summary["ane_cost_share"] == pytest.approx(0.3)
    assert summary["off_ane_cost"] == {"gather -> CPU": 0.7}
    text = commands.compute_plan_text({"status": "measured", "compute_units": "ALL", **summary,
                                       "compute_devices": {"available": ["CPU", "GPU", "ANE"]}, "notes": [coreml_runtime.MAC_ANE_NOTE]})
    assert "ANE share 30% of Core ML's estimated cost, 75% of ops" in text and "gather -> CPU (70.0% of the cost)" in text
    assert "not an iPhone's" in text


def test_an_empty_compute_plan_does_not_crash_preflight(mac, package):
    mac.setattr(ct.models, "MLModel", fake_mlmodel(proxy=object(), devices=(MLCPUComputeDevice,)))
    empty = SimpleNamespace(model_structure=SimpleNamespace(program=SimpleNamespace(
        functions={"main": SimpleNamespace(block=SimpleNamespace(operations=[]))})),
        get_compute_device_usage_for_mlprogram_operation=lambda op: None,
        get_estimated_cost_for_mlprogram_operation=lambda op: None)
    from coremltools.models import compute_plan

    mac.setattr(compute_plan.MLComputePlan, "load_from_path", classmethod(lambda cls, path, compute_units: empty))
    plan = coreml_runtime.compute_plan(package)
    assert plan["status"] == "measured" and plan["ops"] == 0 and plan["ane_share"] is None and plan["ane_cost_share"] is None
    text = commands.preflight_text({"artifact": str(package), "preflight": Preflight(0, [], 0, False).to_dict(), "compute_plan": plan})
    assert "places no ops" in text and "share n/a of ops" in text and "this Mac has no Neural Engine" in text


def test_compute_plan_of_an_unloadable_package_is_skipped_with_the_reason(mac, package):
    mac.setattr(ct.models, "MLModel", fake_mlmodel(proxy=None, warning=COMPILE_ERROR))
    plan = coreml_runtime.compute_plan(package)
    assert plan["status"] == "skipped" and "needs macOS 15" in plan["reason"]


def test_empty_program_has_no_static_share():
    pre = Preflight(0, [], 0, False).to_dict()
    assert pre["ane_share_estimate"] is None and "n/a" in markdown(pre)


def test_host_cpu_on_macos_is_the_chip_name(monkeypatch):
    monkeypatch.setattr(envinfo.sys, "platform", "darwin")
    monkeypatch.setattr(envinfo.subprocess, "run", lambda *a, **k: SimpleNamespace(stdout="Apple M2 Pro\n"))
    assert envinfo.cpu_model() == "Apple M2 Pro"


def test_export_keeps_a_package_this_mac_cannot_load(mac, tmp_path, capsys):
    from edgevt.cli import main

    mac.setattr(ct.models, "MLModel", fake_mlmodel(proxy=None, warning=COMPILE_ERROR))
    out = tmp_path / "out"
    mac.setattr(sys, "argv", ["edgevt", "export", "tiny-swiftformer", "--target", "coreml", "--weights", "random", "--no-bench",
                              "--option", "deployment_target=iOS18", "--out", str(out)])
    with pytest.raises(SystemExit) as info:
        main()
    err = capsys.readouterr().err
    kept = out / "tiny-swiftformer-fp16.unverified.mlpackage"
    assert info.value.code == 3 and kept.is_dir() and not (out / "tiny-swiftformer-fp16.mlpackage").exists()
    assert "needs macOS 15" in err and f"{coreml_runtime.ENGINE_ENV}=interpreter edgevt validate {kept} --model tiny-swiftformer" in err
    failed = json.loads((out / "report.failed.json").read_text())
    assert failed["parity"]["status"] == "skipped" and "cannot load" in failed["parity"]["reason"]
    assert failed["artifact"]["path"] == str(kept) and not (out / "report.json").exists()
    # the hint works: the interpreter checks the kept package
    mac.setenv(coreml_runtime.ENGINE_ENV, "interpreter")
    mac.setattr(sys, "argv", ["edgevt", "-q", "validate", str(kept), "--model", "tiny-swiftformer", "--weights", "random",
                              "--seed", "0", "--json"])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 0 and json.loads(capsys.readouterr().out)["parity"]["engine"] == "mil-interpreter"
