"""The bundle: the one contract between jenga-export and the edge agent.

    BUNDLE_DIR/
      manifest.json       what is in the bundle and the sha256 of every file
      <task>.onnx         one graph per task (the contract)
      merged-<source>.onnx  optional: all tasks of one schema in one graph

`verify_bundle` is the only way the edge opens a bundle: it checks the format
version, the agent and onnxruntime versions the bundle needs, and the sha256
of every listed file BEFORE any graph is handed to onnxruntime. A mismatch is
a BundleError: a tampered or half-copied bundle is refused, never loaded.
"""

from __future__ import annotations

from .contract.digest import sha256_file
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from . import __version__
from .contract.errors import BundleError, SchemaError
from .contract.schema import FeatureSchema

MANIFEST = "manifest.json"
BUNDLE_FORMAT = "jenga.bundle"
BUNDLE_FORMAT_VERSION = 1
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.onnx$")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: str            # float32 | int64
    shape: tuple          # e.g. ("batch", 38)

    @classmethod
    def from_json(cls, d: dict) -> "TensorSpec":
        return cls(d["name"], d["dtype"], tuple(d["shape"]))


@dataclass(frozen=True)
class TaskEntry:
    name: str
    type: str             # anomaly_detection | classification
    mode: str             # supervised | novelty
    source: str
    file: str
    sha256: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    labels: tuple[str, ...]
    schema: FeatureSchema
    threshold: Optional[float]
    metrics: dict = field(default_factory=dict, compare=False)
    parity: dict = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class MergedEntry:
    file: str
    sha256: str
    source: str
    tasks: tuple[str, ...]
    outputs: dict         # task -> [output names]


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: dict
    tasks: dict[str, TaskEntry]
    merged: tuple[MergedEntry, ...]

    @property
    def bundle_id(self) -> str:
        return self.manifest["bundle_id"]

    def file(self, name: str) -> Path:
        return self.path / name


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", str(text))[:3])


def read_manifest(path: str | Path) -> dict:
    d = Path(path)
    mpath = d / MANIFEST
    if not d.is_dir():
        raise BundleError(f"{d}: bundle directory not found")
    if not mpath.is_file():
        raise BundleError(f"{d}: not a bundle (no {MANIFEST}); point at the directory jenga-export wrote")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{mpath}: not valid JSON ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{mpath}: format is {manifest.get('format') if isinstance(manifest, dict) else '?'!r}, "
                          f"expected {BUNDLE_FORMAT!r}")
    if manifest.get("format_version") != BUNDLE_FORMAT_VERSION:
        raise BundleError(f"{mpath}: format_version {manifest.get('format_version')} is not supported "
                          f"(this agent reads {BUNDLE_FORMAT_VERSION}); re-export with a matching jenga-export")
    return manifest


def verify_bundle(path: str | Path) -> Bundle:
    """Check versions and every file's sha256; return the parsed bundle."""
    d = Path(path)
    manifest = read_manifest(d)
    _check_requirements(manifest, d)
    try:
        tasks = {t["name"]: _task_entry(t) for t in manifest["tasks"]}
        merged = tuple(MergedEntry(m["file"], m["sha256"], m["source"], tuple(m["tasks"]), m["outputs"])
                       for m in manifest.get("merged", []))
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{d / MANIFEST}: malformed manifest ({type(exc).__name__}: {exc})") from None
    except SchemaError as exc:
        raise BundleError(f"{d / MANIFEST}: {exc}") from None
    if not tasks:
        raise BundleError(f"{d / MANIFEST}: the bundle lists no tasks")
    for name, digest in [(t.file, t.sha256) for t in tasks.values()] + [(m.file, m.sha256) for m in merged]:
        _check_file(d, name, digest)
    return Bundle(d, manifest, tasks, merged)


def _check_requirements(manifest: dict, d: Path) -> None:
    req = manifest.get("requires", {})
    need = req.get("agent_min_version", "0")
    if version_tuple(__version__) < version_tuple(need):
        raise BundleError(f"{d}: bundle needs jenga-edge >= {need}, this agent is {__version__}")
    need_ort = req.get("onnxruntime_min_version")
    if need_ort:
        try:
            import onnxruntime   # already loaded by any agent; importlib.metadata would cost ~4 MB
        except ImportError:
            raise BundleError("onnxruntime is not installed; pip install onnxruntime") from None
        have = onnxruntime.__version__
        if version_tuple(have) < version_tuple(need_ort):
            raise BundleError(f"{d}: bundle needs onnxruntime >= {need_ort}, installed is {have}")


def _task_entry(t: dict) -> TaskEntry:
    schema = FeatureSchema.from_json(t["schema"])
    if schema.sha256 != t["schema_sha256"]:
        raise BundleError(f"task {t['name']!r}: feature schema does not match its sha256 in the manifest")
    return TaskEntry(t["name"], t["type"], t.get("mode", "supervised"), t["source"], t["file"], t["sha256"],
                     tuple(TensorSpec.from_json(i) for i in t["inputs"]),
                     tuple(TensorSpec.from_json(o) for o in t["outputs"]),
                     tuple(t["labels"]), schema, t.get("threshold"), t.get("metrics", {}), t.get("parity", {}))


def _check_file(d: Path, name: str, digest: str) -> None:
    # Names come from a file that may have been tampered with: no paths, no '..'.
    if not isinstance(name, str) or not _SAFE_NAME.match(name):
        raise BundleError(f"{d / MANIFEST}: refusing file name {name!r} (plain *.onnx names only)")
    p = d / name
    if not p.is_file():
        raise BundleError(f"{d}: {name} is listed in the manifest but missing")
    actual = sha256_file(p)
    if actual != digest:
        raise BundleError(f"{d}: {name} sha256 mismatch (manifest {digest[:12]}…, file {actual[:12]}…): "
                          "the bundle was modified or partly copied; refusing to load it")
