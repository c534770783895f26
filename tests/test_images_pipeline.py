"""--images, --calibration-images and --samples through export, validate and matrix (tiny models, ONNX)."""

import json
import shutil
import sys

import numpy as np
import pytest
from photo_fixtures import mixed_folder, natural_folder, noise_photo, photo_folder

from edgevt import pipeline
from edgevt.cli import main
from edgevt.errors import EXIT_OK, EXIT_USAGE, UsageError
from edgevt.images import ImageOptions
from edgevt.parity import Precision


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def invoke(*args):
        monkeypatch.setattr(sys, "argv", ["edgevt", *args])
        with pytest.raises(SystemExit) as info:
            main()
        return info.value.code

    return invoke


@pytest.fixture
def mixed(tmp_path):
    return mixed_folder(tmp_path / "photos")


def test_export_checks_parity_on_the_users_photos_and_lists_what_it_skipped(run, mixed, tmp_path, capsys):
    out = tmp_path / "out"
    code = run("export", "tiny-swiftformer", "--weights", "random", "--no-bench", "--images", str(mixed), "--samples", "4",
               "--out", str(out))
    text = capsys.readouterr().out
    assert code == EXIT_OK, text
    rep = json.loads((out / "report.json").read_text())
    images = rep["inputs"]["images"]
    # 6 files PIL identifies, 4 chosen evenly (broken.jpg among them fails to decode), notes.txt is no image at all
    assert rep["inputs"]["names"][:3] == ["gray.png", "rgba.png", "rotated.jpg"] and rep["parity"]["photos"] == 3
    assert images["used"] == 3 and images["not_selected"] == 2 and images["cap_from"] == "--samples"
    assert sorted(s["file"] for s in images["skipped"]) == ["broken.jpg", "notes.txt"]
    assert "95% CI" in text and "skipped 2 file(s): notes.txt (not an image PIL can read)" in text
    assert "skipped 2 file(s)" in (out / "report.md").read_text()


@pytest.mark.parametrize("flag,folder", [("--images", "missing"), ("--images", "empty"), ("--calibration-images", "missing")])
def test_a_missing_or_empty_folder_exits_2_and_writes_nothing(run, tmp_path, capsys, flag, folder):
    (tmp_path / "empty").mkdir()
    out = tmp_path / "out"
    code = run("export", "tiny-swiftformer", "--weights", "random", "--precision", "int8-static", "--no-bench",
               flag, str(tmp_path / folder), "--out", str(out))
    assert code == EXIT_USAGE
    assert f"{flag} {tmp_path / folder}" in capsys.readouterr().err
    assert not out.exists()


def test_int8_static_calibrates_on_the_calibration_photos_and_reports_the_overlap(tmp_path):
    evaluation = natural_folder(tmp_path / "eval", 3)
    calibration = natural_folder(tmp_path / "calib", 1, view="crop60-br")
    for i, photo in enumerate(sorted(evaluation.iterdir())[:2]):
        shutil.copy(photo, calibration / f"copy-{i}.png")  # the same photos under other names
    outcome = pipeline.export("tiny-swin", "onnx", Precision.INT8_STATIC, "random", 0, tmp_path / "out", {}, {}, None,
                              lambda m: None, images=ImageOptions(str(evaluation), str(calibration)))
    rep = outcome.report
    assert rep["export"]["quantization"]["calibration"]["samples"] == 3
    cal = rep["inputs"]["calibration"]
    assert cal["source"] == str(calibration) and cal["used"] == 3 and cal["shared_with_evaluation"] == 2
    markdown = outcome.report_path.with_suffix(".md").read_text()  # report.md, or report.failed.md: parity may fail on 3 photos
    assert "2 of the 3 distinct calibration photos are also evaluation photos" in markdown


def test_without_a_calibration_folder_the_evaluation_photos_calibrate(tmp_path):
    from edgevt.inputs import parity_samples
    from edgevt.models import get_spec

    evaluation = photo_folder(tmp_path / "eval", {"a.png": 0, "b.png": 1})
    s = parity_samples(get_spec("tiny-swin"), options=ImageOptions(str(evaluation)), calibrate=True)
    assert s.calibration is None and s.calibration_images() is s.images
    np.testing.assert_array_equal(s.calibration_batch(), s.batch[:2])
    image = parity_samples(get_spec("tiny-swin"), input_kind="image", options=ImageOptions(None, str(evaluation)), calibrate=True)
    assert len(image.calibration) == 2 and image.calibration.pixels is not None
    fed = image.as_artifact_samples("image")
    np.testing.assert_array_equal(fed.calibration_batch(), image.calibration.pixels)  # image input: calibrate on pixels


def test_validate_reuses_the_photos_the_report_records(tmp_path):
    folder = photo_folder(tmp_path / "eval", {"a.png": 0})
    recorded = {"inputs": {"images": {"source": str(folder), "cap": 5, "cap_from": "--samples"}}}
    assert pipeline.recorded_images(recorded, None, lambda m: None) == ImageOptions(str(folder), None, 5)
    assert pipeline.recorded_images(recorded, ImageOptions(samples=2), lambda m: None).samples == 2
    gone = {"inputs": {"images": {"source": str(tmp_path / "gone")}}}
    assert pipeline.recorded_images(gone, None, lambda m: None) == ImageOptions()


def _keys(plan):
    from edgevt.matrix.runner import _keys

    host = {"cpu": "test"}
    ids = {name: {"random": True} for name in plan.specs}
    return {c.id: _keys(plan, c, ids, host) for c in plan.cells}


def test_matrix_cache_keys_follow_the_photos_content(tmp_path):
    from edgevt.matrix import make_plan

    evaluation = photo_folder(tmp_path / "eval", {"a.png": 0, "b.png": 1})
    calibration = photo_folder(tmp_path / "calib", {"c.png": 2})

    def plan():
        return make_plan("tiny-swin", "onnx", "fp32,int8-static", None, "random", 0, {}, {}, {}, None,
                         images=ImageOptions(str(evaluation), str(calibration)))

    first = plan()
    assert first.describe()["inputs"]["images"]["used"] == 2 and first.describe()["inputs"]["calibration"]["used"] == 1
    before = _keys(first)
    noise_photo((64, 48), 5).save(evaluation / "b.png")  # one evaluation photo changes: every result recomputes
    after_eval = _keys(plan())
    for cell in before:
        assert after_eval[cell][0] == before[cell][0] and after_eval[cell][1] != before[cell][1]
    noise_photo((64, 48), 6).save(calibration / "c.png")  # the calibration photo changes: the int8-static artifact too
    after_cal = _keys(plan())
    assert after_cal["tiny-swin/onnx/fp32"] == after_eval["tiny-swin/onnx/fp32"]
    assert after_cal["tiny-swin/onnx/int8-static"][0] != after_eval["tiny-swin/onnx/int8-static"][0]
    shutil.rmtree(calibration)
    calibration.mkdir()
    with pytest.raises(UsageError, match="calibration-images"):
        plan()


def test_matrix_report_lists_the_photos_used_and_skipped(tmp_path, mixed):
    from edgevt.matrix import make_plan, reports

    p = make_plan("tiny-swin", "onnx", "fp32", None, "random", 0, {}, {}, {}, None, images=ImageOptions(str(mixed)))
    text = reports.markdown(reports.build(p.describe(), [], {}))
    assert f"photos: 5 from {mixed}" in text and "skipped 2 file(s): notes.txt (not an image PIL can read)" in text


def test_matrix_with_a_missing_images_folder_exits_2_before_any_cell(run, tmp_path, capsys):
    out = tmp_path / "matrix"
    code = run("matrix", "-m", "tiny-swin", "--weights", "random", "--images", str(tmp_path / "missing"), "--samples", "3",
               "--out", str(out), "--cache-dir", str(tmp_path / "cache"))
    assert code == EXIT_USAGE and f"--images {tmp_path / 'missing'}: no such folder" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / "cache").exists()
