import pytest

from edgevt.errors import ProfileError, UsageError
from edgevt.parity import Precision
from edgevt.profiles import bench_settings, bundled_names, load_profile


@pytest.mark.parametrize("name", bundled_names())
def test_every_bundled_profile_loads(name):
    from edgevt.exporters import target_names

    prof = load_profile(name)
    assert prof.target in target_names() and prof.description
    # a target recipe's name starts with its target; device recipes are named after the device
    assert prof.target == name.split("-")[0] or name in DEVICE_PROFILES


DEVICE_PROFILES = {"ci-fast", "iphone-ane", "android-cpu", "edge-linux"}


@pytest.mark.parametrize("name", sorted(DEVICE_PROFILES))
def test_device_profiles_expand_to_a_matrix(name):
    from edgevt.matrix import make_plan

    prof = load_profile(name)
    plan = make_plan(None if prof.matrix.get("models") else "swiftformer-xs", None, None, name, "random", 0, {}, {}, {}, None)
    assert plan.cells and all(not c.unsupported for c in plan.cells)
    assert {c.target for c in plan.cells} == set(prof.matrix["targets"])
    if prof.target in plan.targets:  # the recipe's options reach its target's cells
        assert all(c.options[k] == v for c in plan.cells if c.target == prof.target for k, v in prof.options.items())


def test_iphone_and_android_recipes_say_what_the_issue_asks():
    ane, android = make_plan_for("iphone-ane"), make_plan_for("android-cpu")
    assert {(c.target, c.precision, c.options["compute_units"]) for c in ane.cells} == {("coreml", "fp16", "CPU_AND_NE")}
    assert {c.precision for c in android.cells} == {"fp32", "int8-dynamic"} and {c.target for c in android.cells} == {"tflite"}


def make_plan_for(name):
    from edgevt.matrix import make_plan

    return make_plan(None, None, None, name, "random", 0, {}, {}, {}, None)




def test_bundled_int8_profile_values():
    prof = load_profile("onnx-cpu-int8")
    assert prof.precision is Precision.INT8_STATIC and prof.options["per_channel"] is True


def write(tmp_path, text):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "text, key",
    [
        ("targett: onnx\n", "targett"),
        ("target: onnx\nprecision: fp8\n", "precision"),
        ("target: onnx\noptions:\n  opset: seventeen\n", "options"),
        ("target: onnx\noptions:\n  colour: red\n", "options"),
        ("tolerances:\n  min_cosine: high\n", "tolerances.min_cosine"),
        ("tolerances:\n  cosine: 0.9\n", "tolerances.cosine"),
        ("bench:\n  runs: -1\n", "bench.runs"),
        ("target: tpu\n", "target"),
        ("- a list\n", "<file>"),
        ("matrix: [a]\n", "matrix"),
        ("matrix:\n  model: [swiftformer-xs]\n", "matrix.model"),
        ("matrix:\n  targets: []\n", "matrix.targets"),
        ("matrix:\n  targets: [tpu]\n", "matrix.targets"),
        ("matrix:\n  precisions: [fp8]\n", "matrix.precisions"),
        ("matrix:\n  options:\n    onnx:\n      colour: red\n", "matrix.options.onnx"),
        ("images: [a, b]\n", "images"),
        ("calibration_images: ''\n", "calibration_images"),
        ("samples: 0\n", "samples"),
        ("samples: lots\n", "samples"),
    ],
)
def test_bad_profiles_name_the_file_and_key(tmp_path, text, key):
    with pytest.raises(ProfileError) as info:
        load_profile(write(tmp_path, text))
    assert info.value.key == key and "p.yaml" in str(info.value) and info.value.exit_code == 2


def test_unknown_profile_name_suggests():
    with pytest.raises(UsageError, match="did you mean onnx-cpu-int8"):
        load_profile("onnx-cpu-int")


def test_cli_values_win_over_profile(tmp_path):
    prof = load_profile(write(tmp_path, "bench:\n  runs: 50\n  warmup: 5\n"))
    settings = bench_settings(prof, runs=7, warmup=None)
    assert settings.runs == 7 and settings.warmup == 5


def test_profile_wins_over_command_defaults(tmp_path):
    prof = load_profile(write(tmp_path, "bench:\n  runs: 50\n"))
    settings = bench_settings(prof, {"runs": 20, "warmup": 3})
    assert settings.runs == 50 and settings.warmup == 3


def test_profile_image_folders_are_relative_to_the_profile_and_the_command_line_wins(tmp_path):
    from edgevt.images import ImageOptions
    from edgevt.profiles import image_options

    (tmp_path / "sub").mkdir()
    path = tmp_path / "sub" / "p.yaml"
    path.write_text("images: photos\ncalibration_images: /data/calib\nsamples: 120\n")
    prof = load_profile(str(path))
    assert image_options(prof) == ImageOptions(str(tmp_path / "sub" / "photos"), "/data/calib", 120)
    assert image_options(prof, "mine", None, 5) == ImageOptions("mine", "/data/calib", 5)
