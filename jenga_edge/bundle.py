"""Open a bundle on the edge: check it before any graph is handed to onnxruntime.

`verify_bundle` is the only way the agent opens a bundle (the format is
contract/bundle_format.py). It checks the format version, that the manifest's
bundle_id is the digest of its content, the agent and onnxruntime versions
the bundle needs, the signature (when a trust store is given), and the sha256
of every listed graph. A mismatch is a BundleError: a tampered or half-copied
bundle is refused, never loaded.

Every file is read once, through one descriptor of the bundle directory:
opened without following a symlink, checked to be a regular file of the size
the manifest gives, read whole, hashed. The Bundle keeps those bytes and the
scorer hands onnxruntime exactly them, so nothing is reopened by path and a
file swapped after it was hashed is never loaded.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from . import __version__, ort_loader
from .contract.bundle_format import MANIFEST, Manifest, MergedEntry, TaskEntry, decode_manifest
from .contract.digest import sha256
from .contract.errors import BundleError
from .contract.signature import SIGNATURE, Signature, decode_signature
from .trust import TrustStore, check_signature

# fullmatch: `$` would let "threat.onnx\n" through.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\.onnx")
MANIFEST_MAX_BYTES = 64 << 20  # a schema with large vocabularies stays far below
SIGNATURE_MAX_BYTES = 4096
GRAPH_MAX_BYTES = 2 << 30  # protobuf's limit: onnxruntime reads no larger graph


@dataclass(frozen=True)
class Bundle:
    path: Path
    manifest: Manifest
    tasks: dict[str, TaskEntry]
    merged: tuple[MergedEntry, ...]
    graphs: dict[str, bytes] = field(default_factory=dict, repr=False)  # file -> the verified bytes
    signer: str | None = None  # the trusted key that signed it (None: unsigned, or not checked)
    checked: bool = False  # whether a trust store with keys looked at its signature

    @property
    def bundle_id(self) -> str:
        return self.manifest.bundle_id

    def graph(self, name: str) -> bytes:
        """The bytes of a graph, exactly those whose sha256 was verified."""
        try:
            return self.graphs[name]
        except KeyError:
            raise BundleError(
                f"{self.path}: {name}: no verified bytes (released after the sessions were built); "
                "verify the bundle again"
            ) from None

    def release_graphs(self) -> None:
        """Drop the graphs' bytes once their sessions are built (they cost their size in RSS)."""
        self.graphs.clear()

    @property
    def trust_note(self) -> str:
        if self.signer:
            return f"signed by key {self.signer}"
        return "unsigned" if self.checked else "signature not checked: no trusted keys"


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in re.findall(r"\d+", str(text))[:3])


def read_manifest(path: str | Path) -> Manifest:
    """The bundle's manifest, decoded and checked against the format and its bundle_id (no graph read)."""
    d = Path(path)
    fd = _open_dir(d)
    try:
        return _manifest(fd, d)
    finally:
        os.close(fd)


def verify_bundle(path: str | Path, trust: TrustStore | None = None) -> Bundle:
    """Check the manifest, versions, signature and every graph's sha256; return the bundle
    with the verified bytes of its graphs."""
    d = Path(path)
    fd = _open_dir(d)
    try:
        manifest = _manifest(fd, d)
        _check_requirements(manifest, d)
        signer = check_signature(trust, manifest.bundle_id, _signature(fd, d, trust), str(d))
        tasks = {t.name: t for t in manifest.tasks}
        if not tasks:
            raise BundleError(f"{d / MANIFEST}: the bundle lists no tasks")
        graphs: dict[str, bytes] = {}
        listed = [(t.file, t.sha256, t.size_bytes) for t in manifest.tasks]
        listed += [(m.file, m.sha256, m.size_bytes) for m in manifest.merged]
        for name, digest, size in listed:
            if name not in graphs:
                graphs[name] = _read_graph(fd, d, name, digest, size)
    finally:
        os.close(fd)
    checked = trust is not None and bool(trust.keys)
    return Bundle(d, manifest, tasks, tuple(manifest.merged), graphs, signer, checked)


def _open_dir(d: Path) -> int:
    """The bundle directory (itself may be a symlink, e.g. `current -> v3`): every file is
    then read relative to this one descriptor, so a directory switched meanwhile is not mixed in."""
    try:
        return os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise BundleError(f"{d}: bundle directory not found ({exc.strerror})") from None


def _manifest(fd: int, d: Path) -> Manifest:
    if _lstat(fd, MANIFEST) is None:
        raise BundleError(f"{d}: not a bundle (no {MANIFEST}); point at the directory jenga-export wrote")
    data = read_regular(fd, d, MANIFEST, MANIFEST_MAX_BYTES)
    return decode_manifest(data, str(d / MANIFEST))


def _signature(fd: int, d: Path, trust: TrustStore | None) -> Signature | None:
    """signature.json, read only when there are keys to check it with."""
    if trust is None or not trust.keys or _lstat(fd, SIGNATURE) is None:
        return None
    return decode_signature(read_regular(fd, d, SIGNATURE, SIGNATURE_MAX_BYTES), str(d / SIGNATURE))


def _lstat(fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def read_regular(fd: int, d: Path, name: str, max_bytes: int, size: int | None = None) -> bytes:
    """The whole content of `name` in the directory `fd`: a regular file (no symlink, device or
    fifo), at most `max_bytes` long, and exactly `size` bytes when given. Opened once."""
    st = _lstat(fd, name)
    if st is None:
        raise BundleError(f"{d}: {name} is listed in the manifest but missing")
    if not stat.S_ISREG(st.st_mode):  # checked before open: opening a device or fifo can block or act
        raise BundleError(f"{d}: {name} is {_kind(st.st_mode)}, not a regular file; refusing it")
    try:
        f = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=fd)
    except OSError as exc:
        raise BundleError(f"{d}: {name}: cannot open ({exc.strerror}); refusing it") from None
    try:
        st = os.fstat(f)  # the file actually opened, whatever the name points at by now
        if not stat.S_ISREG(st.st_mode):
            raise BundleError(f"{d}: {name} is {_kind(st.st_mode)}, not a regular file; refusing it")
        if st.st_size > max_bytes or (size is not None and st.st_size != size):
            want = f"{size} as the manifest says" if size is not None else f"at most {max_bytes}"
            raise BundleError(f"{d}: {name} is {st.st_size} bytes, expected {want}; refusing it")
        return _read_all(f, st.st_size, d, name)
    finally:
        os.close(f)


def _read_all(f: int, size: int, d: Path, name: str) -> bytes:
    chunks, left = [], size
    while left > 0:
        chunk = os.read(f, min(left, 1 << 24))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    if left or os.read(f, 1):
        raise BundleError(f"{d}: {name} changed size while it was read; refusing it")
    return b"".join(chunks)


def _kind(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a fifo"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a socket" if stat.S_ISSOCK(mode) else "not a plain file"


def _check_requirements(manifest: Manifest, d: Path) -> None:
    need = manifest.requires.agent_min_version
    if version_tuple(__version__) < version_tuple(need):
        raise BundleError(f"{d}: bundle needs jenga-edge >= {need}, this agent is {__version__}")
    need_ort = manifest.requires.onnxruntime_min_version
    try:
        onnxruntime = ort_loader.load()  # the module's own version: importlib.metadata would cost ~4 MB
    except ImportError:
        raise BundleError("onnxruntime is not installed; pip install onnxruntime") from None
    have = onnxruntime.__version__
    if version_tuple(have) < version_tuple(need_ort):
        raise BundleError(f"{d}: bundle needs onnxruntime >= {need_ort}, installed is {have}")


def _read_graph(fd: int, d: Path, name: str, digest: str, size: int) -> bytes:
    # Names come from a file that may have been tampered with: no paths, no '..', no control characters.
    if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name):
        raise BundleError(f"{d / MANIFEST}: refusing file name {name!r} (plain *.onnx names only)")
    data = read_regular(fd, d, name, GRAPH_MAX_BYTES, size)
    actual = sha256(data).hexdigest()
    if actual != digest:
        raise BundleError(
            f"{d}: {name} sha256 mismatch (manifest {digest[:12]}…, file {actual[:12]}…): "
            "the bundle was modified or partly copied; refusing to load it"
        )
    return data
