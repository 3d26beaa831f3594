"""Open a bundle on the edge: check it before any graph is handed to onnxruntime.

`verify_bundle` is the only way the agent opens a bundle (the format is
contract/bundle_format.py). It checks the format version, the agent and
onnxruntime versions the bundle needs, and the sha256 of every listed graph.
A mismatch is a BundleError: a tampered or half-copied bundle is refused,
never loaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .contract.bundle_format import MANIFEST, Manifest, MergedEntry, TaskEntry, decode_manifest
from .contract.digest import sha256_file
from .contract.errors import BundleError

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.onnx$")


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: Manifest
    tasks: dict[str, TaskEntry]
    merged: tuple[MergedEntry, ...]

    @property
    def bundle_id(self) -> str:
        return self.manifest.bundle_id

    def file(self, name: str) -> Path:
        return self.path / name


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", str(text))[:3])


def read_manifest(path: str | Path) -> Manifest:
    """The bundle's manifest, decoded and checked against the format (no file hashed yet)."""
    d = Path(path)
    mpath = d / MANIFEST
    if not d.is_dir():
        raise BundleError(f"{d}: bundle directory not found")
    if not mpath.is_file():
        raise BundleError(f"{d}: not a bundle (no {MANIFEST}); point at the directory jenga-export wrote")
    return decode_manifest(mpath.read_bytes(), str(mpath))


def verify_bundle(path: str | Path) -> Bundle:
    """Check versions and every graph's sha256; return the parsed bundle."""
    d = Path(path)
    manifest = read_manifest(d)
    _check_requirements(manifest, d)
    tasks = {t.name: t for t in manifest.tasks}
    if not tasks:
        raise BundleError(f"{d / MANIFEST}: the bundle lists no tasks")
    for name, digest in [(t.file, t.sha256) for t in manifest.tasks] + [(m.file, m.sha256) for m in manifest.merged]:
        _check_file(d, name, digest)
    return Bundle(d, manifest, tasks, tuple(manifest.merged))


def _check_requirements(manifest: Manifest, d: Path) -> None:
    need = manifest.requires.agent_min_version
    if version_tuple(__version__) < version_tuple(need):
        raise BundleError(f"{d}: bundle needs jenga-edge >= {need}, this agent is {__version__}")
    need_ort = manifest.requires.onnxruntime_min_version
    try:
        import onnxruntime  # already loaded by any agent; importlib.metadata would cost ~4 MB
    except ImportError:
        raise BundleError("onnxruntime is not installed; pip install onnxruntime") from None
    have = onnxruntime.__version__
    if version_tuple(have) < version_tuple(need_ort):
        raise BundleError(f"{d}: bundle needs onnxruntime >= {need_ort}, installed is {have}")


def _check_file(d: Path, name: str, digest: str) -> None:
    # Names come from a file that may have been tampered with: no paths, no '..'.
    if not isinstance(name, str) or not _SAFE_NAME.match(name):
        raise BundleError(f"{d / MANIFEST}: refusing file name {name!r} (plain *.onnx names only)")
    p = d / name
    if not p.is_file():
        raise BundleError(f"{d}: {name} is listed in the manifest but missing")
    actual = sha256_file(p)
    if actual != digest:
        raise BundleError(
            f"{d}: {name} sha256 mismatch (manifest {digest[:12]}…, file {actual[:12]}…): "
            "the bundle was modified or partly copied; refusing to load it"
        )
