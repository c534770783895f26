"""--weights PATH: safetensors and plain tensor checkpoints load; pickled code is refused."""

import pickle

import pytest
import torch

from edgevt.errors import WeightsError
from edgevt.models import get_spec
from edgevt.models.loading import build_random, load_model, state_digest


@pytest.fixture(scope="module")
def reference():
    return load_model(get_spec("tiny-swin"), "random", 5)


def test_safetensors_file_loads_the_same_weights(reference, tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in reference.module.model.state_dict().items()}, str(path))
    loaded = load_model(get_spec("tiny-swin"), str(path))
    assert loaded.weights_sha256 == reference.weights_sha256


def test_hf_directory_loads_with_from_pretrained(reference, tmp_path):
    reference.module.model.save_pretrained(tmp_path)
    loaded = load_model(get_spec("tiny-swin"), str(tmp_path))
    assert state_digest(loaded.module) == reference.weights_sha256


def test_plain_tensor_checkpoint_loads_with_weights_only(reference, tmp_path):
    path = tmp_path / "w.bin"
    torch.save(reference.module.model.state_dict(), path)
    assert load_model(get_spec("tiny-swin"), str(path)).weights_sha256 == reference.weights_sha256


class Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"x": Payload()}))
    with pytest.raises(WeightsError, match="never unpickles"):
        load_model(get_spec("tiny-swin"), str(path))


def test_weights_of_another_variant_are_refused(tmp_path):
    from safetensors.torch import save_file

    other = build_random(get_spec("tiny-swinv2"), 0)
    path = tmp_path / "other.safetensors"
    save_file({k: v.contiguous() for k, v in other.state_dict().items()}, str(path))
    with pytest.raises(WeightsError, match="does not fit"):
        load_model(get_spec("tiny-swin"), str(path))


def test_a_local_model_directory_is_a_model_name(reference, tmp_path):
    from edgevt.models.loading import resolve_spec

    reference.module.model.save_pretrained(tmp_path)
    spec = resolve_spec(str(tmp_path))
    loaded = load_model(spec, "pretrained")  # from_pretrained on the directory itself
    assert spec.family.name == "swin" and loaded.weights_sha256 == reference.weights_sha256
