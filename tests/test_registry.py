import json

import pytest

from edgevt.errors import EXIT_USAGE, UnknownModelError, UsageError
from edgevt.models import get_spec, list_models
from edgevt.models.loading import resolve_spec
from edgevt.models.registry import register

FACTS = {  # name: (hf id, input size, a distinguishing config value)
    "swiftformer-xs": ("MBZUAI/swiftformer-xs", 224, ("embed_dims", [48, 56, 112, 220])),
    "swiftformer-s": ("MBZUAI/swiftformer-s", 224, ("depths", [3, 3, 9, 6])),
    "swiftformer-l1": ("MBZUAI/swiftformer-l1", 224, ("embed_dims", [48, 96, 192, 384])),
    "swiftformer-l3": ("MBZUAI/swiftformer-l3", 224, ("depths", [4, 4, 12, 6])),
    "swin-tiny": ("microsoft/swin-tiny-patch4-window7-224", 224, ("depths", [2, 2, 6, 2])),
    "swin-small": ("microsoft/swin-small-patch4-window7-224", 224, ("depths", [2, 2, 18, 2])),
    "swin-base": ("microsoft/swin-base-patch4-window7-224", 224, ("embed_dim", 128)),
    "swinv2-tiny": ("microsoft/swinv2-tiny-patch4-window8-256", 256, ("window_size", 8)),
    "swinv2-small": ("microsoft/swinv2-small-patch4-window8-256", 256, ("depths", [2, 2, 18, 2])),
    "swinv2-base": ("microsoft/swinv2-base-patch4-window8-256", 256, ("num_heads", [4, 8, 16, 32])),
    "cvt-13": ("microsoft/cvt-13", 224, ("num_labels", 1000)),
    "cvt-21": ("microsoft/cvt-21", 224, ("depth", [1, 4, 16])),
    "cvt-w24": ("microsoft/cvt-w24-384-22k", 384, ("embed_dim", [192, 768, 1024])),
}


@pytest.mark.parametrize("name", list(FACTS))
def test_every_published_variant_is_registered_with_its_settings(name):
    hf_id, size, (key, value) = FACTS[name]
    spec = get_spec(name)
    assert spec.hf_id == hf_id
    assert spec.input_size == size
    assert spec.config[key] == value


@pytest.mark.parametrize("name", list(FACTS))
def test_registered_config_builds_the_hf_config(name):
    import transformers

    spec = get_spec(name)
    config = getattr(transformers, spec.family.config_class)(**dict(spec.config))
    for key, value in spec.config.items():
        assert getattr(config, key) == value


def test_glob_finds_families():
    assert [s.name for s in list_models("swiftformer-*")] == ["swiftformer-xs", "swiftformer-s", "swiftformer-l1", "swiftformer-l3"]
    assert {s.family.name for s in list_models("swin*")} == {"swin", "swinv2"}


def test_unknown_name_suggests_close_names_and_is_a_usage_error():
    with pytest.raises(UnknownModelError) as info:
        get_spec("swin-tinyy")
    assert "swin-tiny" in info.value.suggestions
    assert info.value.exit_code == EXIT_USAGE
    assert "did you mean" in str(info.value)


def test_hf_id_resolves_to_the_registered_variant():
    assert get_spec("microsoft/cvt-13").name == "cvt-13"


def test_registering_a_name_twice_is_an_error():
    spec = get_spec("swin-tiny")
    with pytest.raises(ValueError, match="registered twice"):
        register("swin-tiny", spec.family, spec.hf_id, spec.processor)


def test_local_directory_of_a_supported_architecture_is_accepted(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "swin", "image_size": 192, "embed_dim": 48}))
    spec = resolve_spec(str(tmp_path))
    assert spec.family.name == "swin" and spec.input_size == 192 and not spec.registered


def test_local_directory_of_another_architecture_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(UsageError, match="exports swiftformer, swin, swinv2, cvt"):
        resolve_spec(str(tmp_path))
