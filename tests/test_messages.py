"""Help and messages say what is true and show enough to act on."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from contract_fixtures import check_contract, edgevt
from edgevt.cli import cli
from edgevt.parity import Thresholds, compare, digits_apart


def test_a_failed_threshold_shows_enough_digits_to_see_why():
    ref = {"logits": np.array([[1.0, 2.0, 3.0, 4.0]] * 2, dtype=np.float32)}
    cand = {"logits": ref["logits"] + np.float32(1e-4) * np.array([[1, -1, 1, -1]], dtype=np.float32)}
    report = compare(ref, cand, Thresholds(min_cosine=1.0, min_top1=0.995), np.array([True, False]), "e", "fp32")
    cosine = next(f for f in report.failures if "cosine" in f)
    assert "cosine 1.0000000 <" not in cosine and cosine.startswith("logits: cosine 0.99999") and cosine.endswith("< 1.0")
    assert digits_apart(0.995, 1.0, 1) == "0.99" and digits_apart(24.96, 25.0, 1) == "24.96"
    assert digits_apart(0.5, 0.9, 7) == "0.5000000" and digits_apart(float("nan"), 1.0, 3) == "nan"


def test_top1_threshold_is_printed_as_given():
    ref = {"logits": np.eye(4, dtype=np.float32)}
    cand = {"logits": np.eye(4, dtype=np.float32)[[0, 1, 2, 0]]}
    report = compare(ref, cand, Thresholds(min_top1=0.995), np.ones(4, bool), "e", "fp32")
    assert any("top-1 agreement 75.0% < 99.5% on 4 photos" in f for f in report.failures), report.failures


def test_bench_of_an_artifact_without_a_report_names_the_file_not_none():
    from edgevt.commands import summary_text

    text = summary_text({"command": "bench", "target": "onnx", "artifact": {"path": "/x/model.onnx", "bytes": 10}}, None)
    assert text.splitlines()[0] == "bench: model.onnx (onnx)" and "None" not in text


def test_export_help_names_every_target_and_its_precisions():
    text = CliRunner().invoke(cli, ["export", "--help"]).output
    for target in ("onnx", "coreml", "tflite"):
        assert f"  {target} " in text
    assert "int8-static (LiteRT)" in text and "edgevt doctor" in text and "report.log" in text


def test_top_level_help_documents_quiet_verbose_and_the_corrupt_artifact_rule():
    text = " ".join(CliRunner().invoke(cli, ["--help"]).output.split())
    assert "Print nothing on stderr unless the command fails" in text and "-v, --verbose" in text
    assert "an artifact that is empty, truncated or not of its format" in text


def test_doctor_text_lists_every_targets_options():
    from edgevt.exporters import get_target, target_names

    result = edgevt("-q", "doctor")
    assert result.code == 0, result
    for name in target_names():
        assert f"  {name}: " in result.out
        for key in get_target(name).options:
            assert f"--option {key}=" in result.out, (name, key)


# --- weights and model-directory errors: bad input (exit 2), never a traceback ---

def _corrupt_safetensors(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"\x00\x01garbage that is no safetensors header")
    return ["export", "tiny-swin", "--weights", str(path)]


def _pickled_safetensors(tmp_path):
    import pickle

    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    return ["export", "tiny-swin", "--weights", str(path)]


def _malformed_config_dir(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text('{"model_type": "swin", ')
    return ["export", str(tmp_path / "model"), "--weights", "random"]


INPUT_FILE_ERRORS = [_corrupt_safetensors, _pickled_safetensors, _malformed_config_dir]


@pytest.mark.parametrize("make", INPUT_FILE_ERRORS)
def test_a_broken_weights_file_or_model_directory_never_ends_in_a_traceback(make, tmp_path):
    result = edgevt(*make(tmp_path), "--out", str(tmp_path / "o"), "--json")
    check_contract(result, as_json=True)
    assert result.code == 2 and not (tmp_path / "o").exists()


@pytest.mark.parametrize("make", INPUT_FILE_ERRORS)
def test_a_broken_weights_file_or_model_directory_is_bad_input(make, tmp_path):
    result = edgevt(*make(tmp_path), "--out", str(tmp_path / "o"), "--json")
    assert result.code == 2 and "unexpected" not in result.json()["error"]


def test_a_local_directorys_error_does_not_talk_about_the_hub(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text('{"model_type": "swin", "embed_dim": 12, "depths": [2, 2], "num_heads": [1, 2]}')
    result = edgevt("export", "tiny-swin", "--weights", str(tmp_path / "model"), "--out", str(tmp_path / "o"), "--json")
    assert result.code == 2 and "Hub" not in result.json()["error"] + (result.json()["hint"] or "")
