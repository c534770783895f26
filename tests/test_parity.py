import numpy as np
import pytest

from edgevt.parity import DEFAULT_THRESHOLDS, Precision, Thresholds, compare, output_metrics, topk_agreement

FP32 = DEFAULT_THRESHOLDS[Precision.FP32]


def logits(n=4, classes=10, seed=0):
    return np.random.default_rng(seed).standard_normal((n, classes)).astype(np.float32) * 3


def run(ref, cand, th=FP32, photos=None):
    photos = np.ones(len(next(iter(ref.values()))), bool) if photos is None else photos
    return compare(ref, cand, th, photos, "test-engine", "fp32")


def test_identical_outputs_pass_with_perfect_metrics():
    ref = {"logits": logits()}
    rep = run(ref, {"logits": ref["logits"].copy()})
    assert rep.status == "pass" and rep.failures == []
    out = rep.outputs[0]
    assert out.max_abs == 0 and out.cosine == pytest.approx(1.0) and out.psnr_db == float("inf")
    assert rep.top1_agreement == 1.0 and rep.top5_agreement == 1.0


def test_error_beyond_atol_fails_and_names_the_output():
    ref = logits()
    rep = run({"logits": ref}, {"logits": ref + 1e-3})
    assert rep.status == "fail"
    assert any(f.startswith("logits:") and "outside atol" in f for f in rep.failures)


def test_error_within_atol_passes():
    ref = logits()
    assert run({"logits": ref}, {"logits": ref + 5e-5}).status == "pass"


def test_nan_in_candidate_fails_and_is_counted():
    ref = logits()
    cand = ref.copy()
    cand[0, 0] = np.nan
    cand[1, 1] = np.inf
    rep = run({"logits": ref}, {"logits": cand})
    assert rep.status == "fail"
    assert rep.outputs[0].nonfinite == 2
    assert any("NaN/inf" in f for f in rep.failures)


def test_shape_mismatch_and_missing_output_fail():
    ref = {"logits": logits(), "features": logits(classes=4)}
    rep = run(ref, {"logits": logits()[:, :5]})
    assert rep.status == "fail"
    assert any("shape" in f for f in rep.failures)
    assert any("features: missing" in f for f in rep.failures)


def test_every_failing_output_is_reported_together():
    ref = {"logits": logits(), "features": logits(seed=1)}
    rep = run(ref, {"logits": -ref["logits"], "features": ref["features"] * 2})
    failing = {f.split(":")[0] for f in rep.failures}
    assert failing == {"logits", "features"}


def test_cosine_of_orthogonal_outputs_is_zero():
    ref = np.array([[1.0, 0.0]], np.float32)
    m = output_metrics("x", ref, np.array([[0.0, 1.0]], np.float32), Thresholds())
    assert m.cosine == pytest.approx(0.0)


def test_cosine_is_the_worst_sample():
    ref = np.array([[1.0, 0.0], [1.0, 0.0]], np.float32)
    cand = np.array([[1.0, 0.0], [1.0, 1.0]], np.float32)
    assert output_metrics("x", ref, cand, Thresholds()).cosine == pytest.approx(np.sqrt(0.5))


def test_psnr_and_snr_known_values():
    ref = np.array([[1.0, -1.0, 1.0, -1.0]], np.float32)
    cand = ref + np.array([[0.01, -0.01, 0.01, -0.01]], np.float32)
    m = output_metrics("x", ref, cand, Thresholds())
    assert m.psnr_db == pytest.approx(40.0, abs=1e-3)  # peak 1, mse 1e-4
    assert m.snr_db == pytest.approx(40.0, abs=1e-3)
    assert m.max_rel == pytest.approx(0.01, rel=1e-4)


def test_low_psnr_fails_when_checked():
    ref = logits()
    th = Thresholds(min_psnr_db=60)
    rep = run({"logits": ref}, {"logits": ref + 0.05}, th)
    assert any("PSNR" in f for f in rep.failures)


def test_one_flipped_top1_among_four_photos_fails_fp32():
    ref = np.eye(4, 10, dtype=np.float32) * 5
    cand = ref.copy()
    cand[2, 7] = 10  # photo 2 now predicts class 7
    rep = run({"logits": ref}, {"logits": cand}, Thresholds(min_top1=1.0))
    assert rep.top1_agreement == 0.75
    assert any("top-1 agreement 75.0%" in f for f in rep.failures)
    assert rep.top1_disagreements == [{"sample": "#2", "reference_class": 2, "candidate_class": 7, "reference_margin": 5.0}]


def test_topk_agreement_only_counts_photos():
    ref = np.eye(4, 10, dtype=np.float32) * 5
    cand = ref.copy()
    cand[3, 7] = 10  # a noise sample disagrees: not a photo, so it does not count
    rep = run({"logits": ref}, {"logits": cand}, Thresholds(min_top1=1.0), photos=np.array([1, 1, 1, 0], bool))
    assert rep.top1_agreement == 1.0 and rep.photos == 3


def test_top5_overlap():
    ref = np.arange(10, dtype=np.float32)[None]  # top-5: 9,8,7,6,5
    cand = ref.copy()
    cand[0, 0] = 100  # class 0 enters top-5, class 5 leaves
    assert topk_agreement(ref, cand, 5) == pytest.approx(0.8)
    assert topk_agreement(ref, cand, 1) == 0.0


def test_thresholds_override_keeps_unset_values():
    th = FP32.override(min_cosine=0.9, atol=None)
    assert th.min_cosine == 0.9 and th.atol == FP32.atol


def test_precision_parse():
    assert Precision.parse("int8") is Precision.INT8_DYNAMIC
    assert Precision.parse("int8", "coreml") is Precision.INT8_WEIGHTS
    assert Precision.parse("int8-static") is Precision.INT8_STATIC
    with pytest.raises(ValueError):
        Precision.parse("int4")


def test_thresholds_tighten_with_precision():
    chain = [Precision.FP32, Precision.FP16, Precision.INT8_DYNAMIC, Precision.INT8_STATIC]
    cos = [DEFAULT_THRESHOLDS[p].min_cosine for p in chain]
    assert cos == sorted(cos, reverse=True)
    # Core ML weight compression computes in fp16 with lossy weights: as strict as int8-dynamic, looser than fp16.
    for p in (Precision.INT8_WEIGHTS, Precision.PALETTIZE):
        assert DEFAULT_THRESHOLDS[p] == DEFAULT_THRESHOLDS[Precision.INT8_DYNAMIC]


def test_a_tie_in_the_candidate_counts_the_same_way_in_agreement_and_disagreements():
    ref = np.zeros((1, 10), np.float32)
    ref[0, 7], ref[0, 2] = 1.0, 0.99
    cand = np.zeros((1, 10), np.float32)
    cand[0, 7] = cand[0, 2] = 1.0  # exact tie: argmax says class 2
    rep = run({"logits": ref}, {"logits": cand}, Thresholds(min_top1=1.0))
    assert rep.top1_agreement == 0.0
    assert [d["candidate_class"] for d in rep.top1_disagreements] == [2]


@pytest.mark.parametrize("agree,total,low,high", [
    (81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (29, 29, 0.8830, 1.0),
])
def test_wilson_interval_matches_newcombes_worked_examples(agree, total, low, high):
    """Newcombe (1998), Statistics in Medicine 17:857, Table I, method 3 (Wilson score, no continuity correction)."""
    from edgevt.parity import wilson_interval

    assert wilson_interval(agree, total) == pytest.approx((low, high), abs=5e-5)


def test_top1_interval_and_every_flip_are_reported():
    from edgevt.parity import top1_text, wilson_interval

    ref = np.eye(20, 10, dtype=np.float32) * 5
    cand = ref.copy()
    cand[2, 7] = 10
    rep = run({"logits": ref}, {"logits": cand}, Thresholds(min_top1=0.97))
    assert rep.top1_agreement == 0.95 and rep.top1_ci95 == pytest.approx(list(wilson_interval(19, 20)))
    assert "top-1 agreement 95.0% < 97% on 20 photos (95% CI 76.4%–99.1%; 1 changed, reference margins ≤ 5)" in rep.failures[0]
    lines = top1_text(rep.to_dict())
    assert lines == ["top-1 agreement 95.0% of 20 photos (95% CI 76.4%–99.1%)",
                     "top-1 changed on #2: class 2 → 7 (reference top-1/top-2 margin 5)"]
    many = {**rep.to_dict(), "top1_disagreements": rep.top1_disagreements * 12}
    assert top1_text(many, flips=10)[-1] == "… and 2 more top-1 changes (report.json lists them all)"
    assert len(top1_text(many, flips=None)) == 13
