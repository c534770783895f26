"""A PASS means the artifact computes what the user's checkpoint computes: its own preprocessing, size, class count,
architecture (backbones too) and identity; a foreign or incomplete checkpoint exits 2 naming what is wrong."""

import json
import sys

import numpy as np
import pytest

from checkpoints import CVT_SIZE, FAMILIES, IMAGENET_MEAN, IMAGENET_STD, fine_tuned, with_processor
from edgevt.cli import main


@pytest.fixture
def run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)

    def invoke(*args):
        monkeypatch.setattr(sys, "argv", ["edgevt", *map(str, args)])
        with pytest.raises(SystemExit) as info:
            main()
        out, err = capsys.readouterr()
        invoke.out, invoke.err = out, err
        return info.value.code

    return invoke


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    root = tmp_path_factory.mktemp("checkpoints")
    return {family: fine_tuned(root, family) for family in FAMILIES}


def size_of(family):
    return CVT_SIZE if family == "cvt" else 64


@pytest.mark.parametrize("family", FAMILIES)
def test_info_shows_the_checkpoints_own_preprocessing_and_its_source(run, ckpts, family):
    assert run("info", ckpts[family], "--json") == 0
    data = json.loads(run.out)
    pre = data["preprocessing"]
    assert pre["source"] == "checkpoint" and pre["origin"].endswith("preprocessor_config.json")
    assert pre["config"]["image_mean"] == [0.5, 0.5, 0.5] and pre["config"]["resample"] == 2
    assert pre["input_size"] == [size_of(family)] * 2 and data["inputs"][0]["shape"][2:] == [size_of(family)] * 2
    assert data["num_labels"] == 5 and data["outputs"][0]["shape"] == [1, 5]


@pytest.mark.parametrize("family", FAMILIES)
def test_parity_tensors_of_a_checkpoint_are_its_hf_processors_output(ckpts, family):
    from transformers import AutoImageProcessor

    from edgevt.inputs import photo_images, photos
    from edgevt.models.loading import resolve_spec

    spec = resolve_spec(str(ckpts[family]), "pretrained")
    processor = AutoImageProcessor.from_pretrained(str(ckpts[family]), backend="pil")
    expected = processor(images=[img for _, img in photo_images()], return_tensors="np")["pixel_values"]
    np.testing.assert_array_equal(photos(spec).batch, expected.astype(np.float32))


FAST_COMBINATIONS = {("swiftformer", "tflite"), ("cvt", "coreml")}  # plus every family on onnx; the rest run under -m slow


@pytest.mark.parametrize("family,target", [
    pytest.param(f, t, marks=() if t == "onnx" or (f, t) in FAST_COMBINATIONS else pytest.mark.slow)
    for t in ("onnx", "tflite", "coreml") for f in FAMILIES])
def test_fine_tuned_checkpoint_exports_with_its_own_contract(run, ckpts, tmp_path, family, target):
    precision = "fp32"
    code = run("export", ckpts[family], "--target", target, "--precision", precision, "--no-bench", "--out", tmp_path / "out", "--json")
    assert code == 0, run.err
    rep = json.loads(run.out)
    assert rep["model"]["preprocessing"]["source"] == "checkpoint"
    assert rep["model"]["input_shape"] == [1, 3, size_of(family), size_of(family)]
    assert rep["parity"]["status"] == "pass" and rep["parity"]["outputs"][0]["shape"] == [10, 5]
    if target == "onnx":  # the artifact itself says which preprocessing its input expects
        import onnx

        props = {p.key: p.value for p in onnx.load(rep["artifact"]["path"]).metadata_props}
        assert json.loads(props["edgevt.preprocessing"])["config"]["image_mean"] == [0.5, 0.5, 0.5]


def _image_export(run, ckpt, target, out):
    code = run("export", ckpt, "--target", target, "--precision", "fp32", "--option", "input_type=image", "--no-bench",
               "--out", out, "--json")
    return code, (json.loads(run.out) if run.out.strip() else {})


@pytest.mark.parametrize("target", ["onnx", "tflite", "coreml"])
def test_image_input_artifact_passes_from_raw_pixels_and_a_wrong_normalisation_fails(run, ckpts, tmp_path, target):
    ckpt = ckpts["swiftformer"]
    code, rep = _image_export(run, ckpt, target, tmp_path / "right")
    assert code == 0, run.err
    assert rep["parity"]["reference"] == "hf-processor + torch-eager" and rep["inputs"]["kind"] == "image"
    assert rep["model"]["input_name"] == "image"
    if target == "onnx":  # no flags: the report says what it was made from (pixels in, checkpoint's processor)
        assert run("validate", rep["artifact"]["path"]) == 0, run.err

    # The same weights, exported by someone who assumed ImageNet normalisation: the artifact bakes in the wrong mean/std.
    wrong = with_processor(ckpt, tmp_path / "imagenet-assumed", image_mean=IMAGENET_MEAN, image_std=IMAGENET_STD)
    code, rep = _image_export(run, wrong, target, tmp_path / "wrong")
    assert code == 0  # consistent with its own (wrong) processor
    assert run("validate", rep["artifact"]["path"], "--model", ckpt, "--json") == 1
    failures = json.loads(run.out)["parity"]["failures"]
    assert any("cosine" in f for f in failures)


@pytest.mark.parametrize("family,outputs", [("swin", ["last_hidden_state", "pooler_output"]),
                                            ("swinv2", ["last_hidden_state", "pooler_output"]),
                                            ("cvt", ["last_hidden_state", "cls_token_value"]),
                                            ("swiftformer", ["last_hidden_state"])])
def test_backbone_checkpoint_exports_its_real_features(run, tmp_path, family, outputs):
    ckpt = fine_tuned(tmp_path, family, backbone=True)
    assert run("export", ckpt, "--target", "onnx", "--no-bench", "--out", tmp_path / "out", "--json") == 0, run.err
    rep = json.loads(run.out)
    assert rep["model"]["architecture"].endswith("Model") and rep["model"]["outputs"] == outputs
    assert [o["name"] for o in rep["parity"]["outputs"]] == outputs and rep["parity"]["status"] == "pass"
    assert rep["parity"]["top1_agreement"] is None  # no class scores to agree on


@pytest.mark.parametrize("target", ["tflite", "coreml"])
def test_swiftformer_backbone_on_the_mobile_targets(run, tmp_path, target):
    ckpt = fine_tuned(tmp_path, "swiftformer", backbone=True)
    assert run("export", ckpt, "--target", target, "--precision", "fp32", "--no-bench", "--out", tmp_path / "o", "--json") == 0, run.err
    rep = json.loads(run.out)
    assert [o["name"] for o in rep["parity"]["outputs"]] == ["last_hidden_state"] and rep["parity"]["status"] == "pass"


# --- identity: exit 2, naming what differs, before anything is exported ---


def _export_weights(run, tmp_path, weights, model="tiny-swiftformer"):
    return run("export", model, "--weights", weights, "--no-bench", "--out", tmp_path / "out")


def test_a_foreign_architecture_as_weights_exits_2(run, tmp_path):
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertForMaskedLM"]}))
    assert _export_weights(run, tmp_path, bert) == 2
    assert "'bert' model" in run.err and "BertForMaskedLM" in run.err and not (tmp_path / "out").exists()


def test_a_swiftformer_of_another_size_exits_2_naming_the_fields(run, tmp_path):
    other = fine_tuned(tmp_path, "swiftformer", num_labels=1000, embed_dims=[8, 16, 24, 40])
    assert _export_weights(run, tmp_path, other) == 2
    assert "embed_dims [8, 16, 24, 40]" in run.err and "[8, 16, 24, 32]" in run.err


def test_another_class_count_exits_2(run, tmp_path):
    assert _export_weights(run, tmp_path, fine_tuned(tmp_path, "swiftformer", num_labels=5)) == 2
    assert "num_labels 5" in run.err and "edgevt export" in run.err  # the hint: export the directory itself


def test_a_backbone_for_a_registered_classifier_exits_2(run, tmp_path):
    assert _export_weights(run, tmp_path, fine_tuned(tmp_path, "swiftformer", backbone=True)) == 2
    assert "SwiftFormerModel" in run.err


def test_an_unsupported_model_directory_exits_2_without_talking_about_the_hub(run, tmp_path):
    (tmp_path / "vit").mkdir()
    (tmp_path / "vit" / "config.json").write_text(json.dumps({"model_type": "vit", "architectures": ["ViTForImageClassification"]}))
    assert run("export", tmp_path / "vit", "--no-bench") == 2
    assert "'vit' model" in run.err and "Hub" not in run.err


def _tamper(ckpt, edit):
    from safetensors.torch import load_file, save_file

    path = ckpt / "model.safetensors"
    state = load_file(str(path))
    edit(state)
    save_file(state, str(path))


def test_missing_tensors_exit_2_naming_them(run, tmp_path):
    ckpt = fine_tuned(tmp_path, "swin")
    _tamper(ckpt, lambda s: s.pop("classifier.weight"))
    assert run("export", ckpt, "--no-bench", "--out", tmp_path / "out") == 2
    assert "missing" in run.err and "classifier.weight" in run.err and not (tmp_path / "out").exists()


def test_unexpected_tensors_exit_2_naming_them(run, tmp_path):
    import torch

    ckpt = fine_tuned(tmp_path, "cvt")
    _tamper(ckpt, lambda s: s.update({"extra.head.weight": torch.zeros(3)}))
    assert run("export", ckpt, "--no-bench") == 2
    assert "extra.head.weight" in run.err


def test_a_corrupt_weights_file_or_config_exits_2(run, tmp_path):
    ckpt = fine_tuned(tmp_path, "swiftformer")
    (ckpt / "model.safetensors").write_bytes(b"\x00not a safetensors file")
    assert run("export", ckpt, "--no-bench") == 2 and "weights" in run.err
    (ckpt / "config.json").write_text("{ not json")
    assert run("export", ckpt, "--no-bench") == 2 and "config.json" in run.err


# --- input size ---


def test_cvt_input_size_comes_from_the_processor_and_input_size_overrides_it(run, ckpts):
    assert run("info", ckpts["cvt"], "--json") == 0 and json.loads(run.out)["inputs"][0]["shape"] == [1, 3, CVT_SIZE, CVT_SIZE]
    assert run("info", ckpts["cvt"], "--input-size", "80", "--json") == 0
    data = json.loads(run.out)
    assert data["inputs"][0]["shape"] == [1, 3, 80, 80] and "--input-size" in data["preprocessing"]["input_size_note"]


def test_a_bad_input_size_is_a_usage_error(run):
    assert run("info", "tiny-swin", "--input-size", "banana") == 2


# --- validate reuses what the report records ---


def test_validate_of_a_random_weights_export_needs_no_flags(run, tmp_path):
    assert run("export", "tiny-swin", "--weights", "random", "--seed", "3", "--no-bench", "--out", tmp_path / "o", "--json") == 0
    artifact = json.loads(run.out)["artifact"]["path"]
    assert run("validate", artifact, "--json") == 0, run.err
    rep = json.loads(run.out)
    assert rep["model"]["weights"] == "random" and rep["model"]["seed"] == 3 and rep["parity"]["status"] == "pass"
    # and the recorded reference is what it checks against: another seed fails
    assert run("validate", artifact, "--seed", "4") == 1
