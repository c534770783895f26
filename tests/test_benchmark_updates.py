"""A benchmark report merged from several runs names the packages of each later run that differ from its header's."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import _matrix  # noqa: E402
from edgevt.envinfo import environment  # noqa: E402


def test_a_later_run_with_another_package_version_says_so():
    header = environment(2)
    meta = {"environment": {**header, "packages": {**header["packages"], "transformers": "0.0.1"}}}
    changed = _matrix.packages_changed(meta, 2)
    assert changed == {"transformers": header["packages"]["transformers"]}
    assert _matrix.changed_text({"packages_changed": changed}) == f", with transformers {header['packages']['transformers']}"


def test_a_later_run_in_the_same_environment_adds_nothing():
    meta = {"environment": environment(2)}
    assert _matrix.packages_changed(meta, 2) == {}
    assert _matrix.changed_text({"packages_changed": {}}) == "" and _matrix.changed_text({}) == ""
