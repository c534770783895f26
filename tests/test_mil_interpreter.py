"""The MIL interpreter's fp16 emulation and error handling, and the ANE pre-flight, on hand-built MIL programs."""

import numpy as np
import pytest

ct = pytest.importorskip("coremltools")
from coremltools.converters.mil import Builder as mb  # noqa: E402

from edgevt.mil.interpreter import Interpreter, fp16_divergence  # noqa: E402
from edgevt.mil.kernels import UnsupportedOpError  # noqa: E402
from edgevt.mil.preflight import markdown, preflight  # noqa: E402

IOS16 = ct.target.iOS16


def program(fn, shape=(2, 3)):
    return mb.program(input_specs=[mb.TensorSpec(shape=shape)], opset_version=IOS16)(fn)


def overflow(x):
    h = mb.cast(x=x, dtype="fp16")
    big = mb.mul(x=h, y=np.float16(1000.0), name="times_1000")
    bigger = mb.mul(x=big, y=np.float16(1000.0), name="times_1e6")
    back = mb.mul(x=bigger, y=np.float16(1e-3), name="times_1e-3")
    return mb.cast(x=back, dtype="fp32")


def test_fp16_storage_is_emulated_overflow_included():
    prog = program(overflow)
    x = np.full((2, 3), 1.0, np.float32)
    assert np.isinf(Interpreter(prog).run({"x": x})[prog.functions["main"].outputs[0].name]).all()
    exact = Interpreter(prog, emulate_fp16=False).run({"x": x})
    np.testing.assert_allclose(next(iter(exact.values())), 1e6 * float(np.float16(1e-3)), rtol=1e-6)


def test_fp16_rounding_matches_numpy_float16():
    prog = program(lambda x: mb.cast(x=mb.add(x=mb.cast(x=x, dtype="fp16"), y=np.float16(0.0)), dtype="fp32"))
    x = np.array([[1 / 3, 2 / 3, 1e-8], [70000.0, -0.1, 3.14159]], np.float32)
    out = next(iter(Interpreter(prog).run({"x": x}).values()))
    np.testing.assert_array_equal(out, x.astype(np.float16).astype(np.float32))


def test_divergence_names_the_overflowing_op():
    diag = fp16_divergence(program(overflow), {"x": np.ones((2, 3), np.float32)})
    assert diag["first_overflow"]["name"] == "times_1e6"
    assert diag["worst_ops"][0]["name"] == "times_1e6"


def test_an_unknown_op_is_an_error_that_names_it():
    prog = program(lambda x: mb.cumsum(x=x, axis=1))
    with pytest.raises(UnsupportedOpError, match="cumsum"):
        Interpreter(prog)


def test_a_missing_input_is_an_error():
    with pytest.raises(Exception, match="missing program input"):
        Interpreter(program(overflow)).run({})


def test_preflight_names_roll_gather_and_normalize():
    def fn(x):
        h = mb.cast(x=x, dtype="fp16")
        rolled = mb.gather(x=h, indices=np.array([2, 3, 0, 1], np.int32), axis=1, name="rolled")  # torch.roll(x, 2, 1)
        picked = mb.gather(x=rolled, indices=np.array([0, 0, 1, 3], np.int32), axis=1, name="picked")
        norm = mb.reduce_l2_norm(x=picked, axes=[1], keep_dims=True)
        return mb.cast(x=mb.real_div(x=picked, y=norm), dtype="fp32")

    findings = preflight(program(fn, (2, 4))).to_dict()["findings"]
    gathers = {f["examples"][0]: f for f in findings if f["check"] == "gather"}
    assert "torch.roll" in gathers["rolled"]["detail"] and gathers["rolled"]["count"] == 1
    assert "torch.roll" not in gathers["picked"]["detail"]
    norm = [f for f in findings if f["op_type"] == "reduce_l2_norm"]
    assert norm and norm[0]["off_ane"] and "normalize" in norm[0]["detail"]


def test_preflight_flags_rank_6_fp32_islands_and_fp32_programs():
    def fn(x):
        h = mb.cast(x=x, dtype="fp16")
        six = mb.reshape(x=h, shape=[1, 2, 2, 2, 2, 2], name="six")
        four = mb.reshape(x=six, shape=[4, 2, 2, 2])
        island = mb.cast(x=four, dtype="fp32", name="island")
        soft = mb.softmax(x=island, axis=-1)
        return mb.cast(x=mb.cast(x=soft, dtype="fp16"), dtype="fp32")

    pre = preflight(program(fn, (4, 8)))
    found = {(f.check, f.op_type): f for f in pre.findings}
    assert found[("rank > 5", "reshape")].ops == ["six"] and pre.max_rank == 6
    assert ("fp32 island", "softmax") in found
    assert 0 < pre.ane_share < 1
    text = markdown(pre.to_dict())
    assert "rank > 5" in text and "| hint |" in text

    fp32 = preflight(program(lambda x: mb.softmax(x=x, axis=-1)))
    assert fp32.ane_share == 0.0 and fp32.findings[0].check == "fp32 program"


def test_preflight_of_a_clean_fp16_program_has_no_findings():
    pre = preflight(program(lambda x: mb.cast(x=mb.relu(x=mb.cast(x=x, dtype="fp16")), dtype="fp32")))
    assert pre.findings == [] and pre.ane_share == 1.0
    assert "No findings" in markdown(pre.to_dict())


def test_the_program_runs_with_numpys_blas_on_one_thread():
    """Small per-sample matrix products lose more to BLAS thread hand-offs than they gain (reports/parity-cost.md)."""
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads():
        return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    seen = []
    prog = program(lambda x: mb.matmul(x=x, y=np.ones((3, 4), np.float32)))
    with threadpool_limits(limits=2, user_api="blas"):  # what numpy would use on a 2-core host
        Interpreter(prog).run({"x": np.ones((2, 3), np.float32)}, lambda step, env: seen.append(blas_threads()))
        assert blas_threads() == {2}
    assert seen == [{1}]
