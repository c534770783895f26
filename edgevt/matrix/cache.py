"""Content-addressed cache of matrix cells: an artifact per export key, a result per (artifact, parity, bench) key.

The artifact key covers what the artifact depends on: the model config, a digest of the weights, the target,
precision and options, the calibration photos' content (int8-static), the converter and runtime versions, and the
source of the code that builds it. The result key adds what parity and latency depend on (the evaluation photos'
content, samples seed, tolerances, bench settings, host). Entries
are written by rename, so a killed run leaves either a whole entry or none.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from edgevt.fsio import atomic_write_text

COMMON_PACKAGES = ("torch", "transformers", "numpy")
CACHE_FORMAT = 1


def default_root() -> Path:
    if os.environ.get("EDGEVT_CACHE_DIR"):
        return Path(os.environ["EDGEVT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "edgevt"


def digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def weights_identity(spec, weights: str, seed: int) -> dict | None:
    """What pins the weights without loading them; None when they cannot be pinned (Hub weights not cached)."""
    if weights == "random":
        return {"random": True, "seed": seed}  # a function of config + seed + code + torch: all in the key
    if weights == "pretrained" and spec.checkpoint and Path(spec.checkpoint).is_dir():
        return {"path_sha256": file_digest(Path(spec.checkpoint))}  # a model directory's own weights
    if weights == "pretrained":
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return None
        for name in ("model.safetensors", "pytorch_model.bin"):
            found = try_to_load_from_cache(spec.hf_id, name)
            if isinstance(found, str):
                return {"pretrained": spec.hf_id, "sha256": file_digest(Path(found))}
        return None
    path = Path(weights)
    return {"path_sha256": file_digest(path)} if path.exists() else None


def _versions(dists: list[str]) -> dict[str, str | None]:
    from edgevt.envinfo import package_version

    return {d: package_version(d) for d in sorted(set(dists))}


def target_packages(target) -> list[str]:
    """The distributions a target's required modules come from (converter and runtime versions)."""
    mapping = _distributions()
    return [dist for module in target.requires for dist in mapping.get(module.split(".")[0], [module])]


@functools.lru_cache(maxsize=1)
def _distributions() -> dict:
    import importlib.metadata

    return importlib.metadata.packages_distributions()  # scans every installed distribution: once per process


def source_digest(modules: list[str]) -> str:
    """Digest of the source files of these modules (a package: all its .py files)."""
    return _source_digest(tuple(sorted(modules)))


@functools.lru_cache(maxsize=64)
def _source_digest(modules: tuple[str, ...]) -> str:
    import importlib.util

    h = hashlib.sha256()
    for module in modules:
        spec = importlib.util.find_spec(module)
        if spec is None or spec.origin is None:
            h.update(f"missing:{module}".encode())
            continue
        origin = Path(spec.origin)
        files = sorted(origin.parent.glob("*.py")) if origin.name == "__init__.py" else [origin]
        for f in files:
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()


ARTIFACT_CODE = ["edgevt.models", "edgevt.inputs", "edgevt.images", "edgevt.preprocessing", "edgevt.exporters.base", "edgevt.rewrites"]
RESULT_CODE = ["edgevt.parity", "edgevt.bench", "edgevt.pipeline", "edgevt.exporters", "edgevt.mil", "edgevt.matrix.worker"]


def artifact_key(spec_data: dict, weights_id: dict, target, precision: str, options: dict, calibration: str | None = None,
                 rewrites: tuple[str, ...] = ()) -> str:
    """`calibration`: the content digest of the photos an int8-static artifact is calibrated on (None otherwise);
    `rewrites`: the names of the rewrites applied to the PyTorch module before conversion."""
    from edgevt import __version__

    code = source_digest([*ARTIFACT_CODE, target.export.__module__])
    return digest({"format": CACHE_FORMAT, "kind": "artifact", "edgevt": __version__, "model": spec_data, "weights": weights_id,
                   "target": target.name, "precision": precision, "options": options, "code": code, "calibration": calibration,
                   "rewrites": list(rewrites),
                   "tools": _versions([*COMMON_PACKAGES, *target_packages(target)])})


def result_key(art_key: str, seed: int, tolerances: dict, bench: dict, host: dict, photos: str | None = None) -> str:
    """`photos`: the content digest of the evaluation photos (changing one photo recomputes parity)."""
    return digest({"format": CACHE_FORMAT, "kind": "result", "artifact": art_key, "seed": seed, "tolerances": tolerances,
                   "bench": bench, "host": host, "photos": photos, "code": source_digest(RESULT_CODE)})


class Cache:
    def __init__(self, root: Path):
        self.root = Path(root)

    def artifact_dir(self, key: str) -> Path:
        return self.root / "artifacts" / key[:2] / key

    def result_path(self, key: str) -> Path:
        return self.root / "results" / key[:2] / f"{key}.json"

    def get_result(self, key: str) -> dict | None:
        path = self.result_path(key)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None  # absent, or a torn write from an older edgevt: recompute
        return data if data.get("key") == key else None

    def put_result(self, key: str, result: dict) -> None:
        from edgevt.report import to_json

        atomic_write_text(self.result_path(key), to_json({**result, "key": key}) + "\n")

    def scratch(self) -> Path:
        """A private directory on the cache's filesystem, named after this process so stale ones can be found."""
        tmp = self.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=tmp))

    def clean_stale(self) -> int:
        """Remove scratch directories of processes that no longer run (a killed matrix leaves its cell's)."""
        removed = 0
        for entry in (self.root / "tmp").glob("*-*") if (self.root / "tmp").is_dir() else []:
            pid = entry.name.split("-", 1)[0]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(entry, ignore_errors=True)
                removed += 1
        return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
