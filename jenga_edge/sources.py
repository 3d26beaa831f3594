"""Event sources for the edge agent: newline-delimited JSON in, `Line`s out.

Every source frames its input into lines and hands them to one bounded
`EventQueue` (event_queue.py): a read's complete lines as one `Chunk`, left in
the read buffer, when none is over the limit, otherwise as a list of lines;
the agent pulls micro-batches with `EventQueue.take`. The
agent's contract is that every event read is accounted for (scored, or
rejected with a reason), so framing never loses a line silently:

* a line longer than `max_line_bytes` is neither dropped nor split: the rest of
  it (up to the next newline) is discarded and ONE `Line` holding its first
  `max_line_bytes` bytes is emitted with `oversize=True`, for the agent to
  reject with reason "oversize";
* the trailing ``\\n`` / ``\\r\\n`` is stripped and empty lines are skipped;
* a partial last line is kept until its newline arrives, and emitted as a line
  of its own when its stream ends (EOF, connection closed, file rotated away);
* back-pressure sources (stdin, file, TCP, unix) block on a full queue, so a
  slow consumer stops them reading (TCP flow control pushes back on senders);
  UDP cannot push back, so a full queue drops the datagram's lines and counts
  them in `dropped`.

Counters on every source (read them any time; they only grow):
``lines`` — lines handed off (enqueued or dropped), ``oversize`` — of those,
how many were oversize, ``dropped`` — of those, how many were not enqueued (UDP
on a full queue, or any source stopped while the queue was full). So for every
source ``lines == enqueued + dropped``.

Listeners bind to loopback unless another address is configured explicitly.
Stdlib only; never imports torch.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import os
import select
import socket
import stat
import sys
import threading
import time
from dataclasses import dataclass
from typing import IO, Literal, Optional

from .contract.errors import ConfigError
from .event_queue import Batch, Chunk, EventQueue, Line  # noqa: F401 - re-exported: sources hand Lines to the queue

from .native import fastjson as _native

_frame = _native.frame if _native is not None else None    # C: count a buffer's lines, find the longest
from .contract.typed import bounded

log = logging.getLogger(__name__)

MIN_LINE_BYTES = 64
MAX_LINE_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_LINE_BYTES = 1024 * 1024

_READ_CHUNK = 64 * 1024
_POLL_S = 0.2            # how often blocked loops look at their stop flag
_UDP_MAX_DATAGRAM = 65535
_UNIX_PATH_MAX = 107     # sun_path is 108 bytes including the terminating NUL

SourceType = Literal["stdin", "file", "tcp", "udp", "unix"]


def check_max_line_bytes(value: object, where: str = "max_line_bytes") -> int:
    """Validate the agent-wide line limit (64 bytes .. 16 MiB)."""
    if not isinstance(value, int) or isinstance(value, bool) \
            or not MIN_LINE_BYTES <= value <= MAX_LINE_BYTES:
        raise ConfigError(f"{where}: expected an integer between {MIN_LINE_BYTES} and "
                          f"{MAX_LINE_BYTES} (16 MiB), got {value!r}")
    return value


# --- framing ---------------------------------------------------------------------------

class LineSplitter:
    """Incremental newline framing for one byte stream.

    `feed(chunk)` returns the complete lines the chunk finishes, as
    ``(data, oversize)`` pairs; a trailing partial line stays buffered (at most
    max_line_bytes + 2 bytes, whatever the line's real length). `flush()` ends
    the stream and returns the buffered partial line, if any.
    """

    def __init__(self, max_line_bytes: int):
        self.max_line_bytes = check_max_line_bytes(max_line_bytes)
        self._buf = bytearray()
        self._discarding = False   # inside an oversize line already emitted

    @property
    def pending(self) -> int:
        """Bytes of a partial line held back until its newline arrives."""
        return len(self._buf)

    def feed(self, chunk: bytes) -> list[tuple[bytes, bool]]:
        return _pairs(*self.feed_lines(chunk))

    def feed_chunk(self, chunk: bytes) -> Chunk | tuple[list[bytes], Optional[list[bool]]]:
        """`feed_lines`, except that when every complete line in the chunk is
        within the limit (the usual case) they stay in one buffer: a `Chunk`
        that the queue and the decoder's C tier read in place, with no bytes
        object per line (at 1 KB a line, those cost ~0.4 us each)."""
        if _frame is None or self._discarding:
            return self.feed_lines(chunk)
        data = bytes(self._buf) + chunk if self._buf else chunk
        cut = data.rfind(b"\n")
        tail = data[cut + 1:] if cut >= 0 else data
        if len(tail) > self.max_line_bytes:
            return self.feed_lines(chunk)
        complete = data if cut == len(data) - 1 else data[:cut + 1]
        count, longest = _frame(complete)
        if longest > self.max_line_bytes:
            return self.feed_lines(chunk)
        self._buf = bytearray(tail)
        return Chunk(complete, count)

    def feed_lines(self, chunk: bytes) -> tuple[list[bytes], Optional[list[bool]]]:
        """`feed` as parallel lists: the lines, and their oversize flags (None
        when no line is oversize)."""
        # Fast path: no line in this chunk is anywhere near the limit, so one
        # C-level split does the framing (3x cheaper per line than the loop below).
        if not self._discarding:
            data = bytes(self._buf) + chunk if self._buf else chunk
            parts = data.split(b"\n")
            tail = parts.pop()
            if len(tail) <= self.max_line_bytes and (not parts or max(map(len, parts)) <= self.max_line_bytes):
                self._buf = bytearray(tail)
                if b"\r" in data:
                    return [p[:-1] if p[-1:] == b"\r" else p for p in parts if p and p != b"\r"], None
                return list(filter(None, parts)), None
        return _unpair(self._feed_slowly(chunk))

    def _feed_slowly(self, chunk: bytes) -> list[tuple[bytes, bool]]:
        out: list[tuple[bytes, bool]] = []
        limit = self.max_line_bytes + 1          # room for the '\r' of a '\r\n' ending
        pos, n = 0, len(chunk)
        while pos < n:
            nl = chunk.find(b"\n", pos)
            end = n if nl < 0 else nl
            if not self._discarding:
                room = limit + 1 - len(self._buf)   # one byte past the limit proves oversize
                self._buf += chunk[pos:min(end, pos + room)]
                if nl >= 0:
                    self._finish(out)
                elif len(self._buf) > limit:
                    out.append((bytes(self._buf[:self.max_line_bytes]), True))
                    self._buf.clear()
                    self._discarding = True
            if nl < 0:
                break
            self._discarding = False             # this newline ends the discarded line
            pos = nl + 1
        return out

    def flush_lines(self) -> tuple[list[bytes], Optional[list[bool]]]:
        return _unpair(self.flush())

    def flush(self) -> list[tuple[bytes, bool]]:
        out: list[tuple[bytes, bool]] = []
        if not self._discarding:
            self._finish(out)
        self._discarding = False
        self._buf.clear()
        return out

    def _finish(self, out: list[tuple[bytes, bool]]) -> None:
        buf = self._buf
        if buf.endswith(b"\r"):
            del buf[-1]
        if len(buf) > self.max_line_bytes:
            out.append((bytes(buf[:self.max_line_bytes]), True))
        elif buf:
            out.append((bytes(buf), False))
        buf.clear()


def _pairs(data: list[bytes], oversize: Optional[list[bool]]) -> list[tuple[bytes, bool]]:
    return list(zip(data, oversize if oversize is not None else [False] * len(data)))


def _unpair(pairs: list[tuple[bytes, bool]]) -> tuple[list[bytes], Optional[list[bool]]]:
    flags = [o for _, o in pairs]
    return [d for d, _ in pairs], (flags if any(flags) else None)


# --- configuration ---------------------------------------------------------------------

# Which SourceConfig fields each type reads; setting another one is a mistake.
_FIELDS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "stdin": (),
    "file": ("path", "start_at", "poll_interval_s", "rotate_wait_s"),
    "tcp": ("host", "port", "max_connections"),
    "udp": ("host", "port", "recv_buffer_bytes"),
    "unix": ("path", "mode", "max_connections"),
}

_INT_FIELDS = frozenset({"port", "max_connections", "recv_buffer_bytes", "mode"})


@dataclass
class SourceConfig:
    """One event source. Loadable with typed_config.build (key-path errors for
    types and bounds); cross-field rules are checked on construction."""

    type: SourceType
    path: Optional[str] = None                     # file, unix
    host: str = "127.0.0.1"                        # tcp, udp: loopback unless told otherwise
    port: Optional[int] = bounded(None, lo=0, hi=65535)   # tcp, udp; 0 = any free port
    start_at: Literal["end", "beginning"] = "end"  # file: where to start in an existing file
    poll_interval_s: float = bounded(0.25, lo=0.01, hi=60.0)   # file
    rotate_wait_s: float = bounded(1.0, lo=0.0, hi=600.0)      # file: keep reading a rotated file
    max_connections: int = bounded(64, lo=1, hi=65536)         # tcp, unix
    recv_buffer_bytes: int = bounded(4 * 1024 * 1024, lo=4096, hi=1024 ** 3)   # udp SO_RCVBUF
    mode: int = bounded(0o660, lo=0, hi=0o777)     # unix: socket file permissions

    def __post_init__(self) -> None:
        where = f"{self.type} source" if isinstance(self.type, str) else "source"
        if self.type not in _FIELDS_BY_TYPE:
            raise ConfigError(f"source: type: expected one of {', '.join(map(repr, _FIELDS_BY_TYPE))}, "
                              f"got {self.type!r}")
        used = _FIELDS_BY_TYPE[self.type]
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "type":
                continue
            if f.name not in used:
                if value != f.default:
                    raise ConfigError(f"{where}: {f.name}: not used by type {self.type!r} "
                                      f"(it reads: {', '.join(used) or 'no options'})")
                continue
            lo, hi = f.metadata.get("min"), f.metadata.get("max")
            if value is None:
                continue
            if lo is not None or hi is not None:
                want_int = f.name in _INT_FIELDS
                if isinstance(value, bool) or not isinstance(value, int if want_int else (int, float)):
                    raise ConfigError(f"{where}: {f.name}: expected "
                                      f"{'an integer' if want_int else 'a number'}, got {value!r}")
                if (lo is not None and value < lo) or (hi is not None and value > hi):
                    raise ConfigError(f"{where}: {f.name}: expected a value between {lo} and {hi}, "
                                      f"got {value}")
        if "path" in used:
            if not isinstance(self.path, str) or not self.path:
                raise ConfigError(f"{where}: path: required for type {self.type!r}")
            if self.type == "unix" and len(os.fsencode(self.path)) > _UNIX_PATH_MAX:
                raise ConfigError(f"{where}: path: a unix socket path is at most {_UNIX_PATH_MAX} "
                                  f"bytes, got {len(os.fsencode(self.path))}: {self.path}")
        if "port" in used and self.port is None:
            raise ConfigError(f"{where}: port: required for type {self.type!r} (0-65535)")
        if "host" in used:
            try:
                if not isinstance(self.host, str):
                    raise ValueError(self.host)
                ipaddress.ip_address(self.host)
            except ValueError:
                raise ConfigError(f"{where}: host: expected an IP address such as 127.0.0.1 or ::1, "
                                  f"got {self.host!r}") from None
        if self.start_at not in ("end", "beginning"):
            raise ConfigError(f"{where}: start_at: expected 'end' or 'beginning', got {self.start_at!r}")


# --- sources ---------------------------------------------------------------------------

class Source:
    """Common lifecycle and counters. Subclasses implement `_open` (runs in
    `start`, may raise ConfigError), `_run` (the thread) and `_wake`."""

    kind = "source"

    def __init__(self, config: SourceConfig, queue: EventQueue, max_line_bytes: int):
        self.config = config
        self.queue = queue
        self.max_line_bytes = check_max_line_bytes(max_line_bytes)
        self.lines = 0
        self.oversize = 0
        self.dropped = 0
        self.eof = False           # only stdin ever reaches the end of its input
        self._stop = threading.Event()
        self._counter_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def origin(self) -> str:
        return self.kind

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stats(self) -> dict:
        return {"origin": self.origin, "lines": self.lines, "oversize": self.oversize,
                "dropped": self.dropped, "eof": self.eof}

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.origin}: already started")
        if self._stop.is_set():
            raise RuntimeError(f"{self.origin}: stopped sources cannot be restarted")
        self._open()
        self._thread = threading.Thread(target=self._guarded_run, name=f"jenga-src-{self.origin}",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop reading/accepting promptly; idempotent. Lines that cannot be
        queued any more (queue full) are counted in `dropped`."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake()
        self.queue.interrupt()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the source's threads; True if they all finished."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    # -- for subclasses

    def _open(self) -> None:
        pass

    def _wake(self) -> None:
        pass

    def _run(self) -> None:
        raise NotImplementedError

    def _guarded_run(self) -> None:
        try:
            self._run()
        except Exception:  # noqa: BLE001 - a source thread must log, not vanish silently
            log.exception("%s: source thread failed", self.origin)

    def _emit_all(self, framed: Chunk | tuple[list[bytes], Optional[list[bool]]], origin: str | None = None,
                  block: bool = True) -> None:
        """Hand a read's lines to the queue as one block (blocking while it is
        full, unless `block` is False: then what does not fit is dropped)."""
        if isinstance(framed, Chunk):
            ok = self.queue.put_chunk(framed, origin or self.origin, block=block, stop=self._stop)
            with self._counter_lock:
                self.lines += framed.count
                self.dropped += framed.count - ok
            return
        data, oversize = framed
        if not data:
            return
        ok = self.queue.put_lines(data, origin or self.origin, oversize, block=block, stop=self._stop)
        with self._counter_lock:
            self.lines += len(data)
            self.oversize += sum(oversize) if oversize is not None else 0
            self.dropped += len(data) - ok


class StdinSource(Source):
    """Reads sys.stdin.buffer (or an injected binary stream) to EOF, then sets
    `eof` (after its last line is queued).

    A stream with a real file descriptor is read with select + os.read, so
    `stop` is prompt even while no input arrives; other streams (io.BytesIO)
    are read with read1/read.
    """

    kind = "stdin"

    def __init__(self, queue: EventQueue, stream: IO[bytes] | None = None, *,
                 max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, config: SourceConfig | None = None):
        super().__init__(config or SourceConfig(type="stdin"), queue, max_line_bytes)
        self._stream = stream

    def _run(self) -> None:
        stream = self._stream if self._stream is not None else getattr(sys.stdin, "buffer", None)
        if stream is None:                   # no stdin at all (e.g. started by a service manager)
            self.eof = True
            return
        fd = _fileno(stream)
        reader = getattr(stream, "read1", None) or stream.read
        splitter = LineSplitter(self.max_line_bytes)
        at_eof = False
        while not self._stop.is_set():
            try:
                if fd is not None:
                    try:
                        ready, _, _ = select.select([fd], [], [], _POLL_S)
                    except (OSError, ValueError):
                        fd = None       # not selectable: fall back to blocking reads
                        continue
                    if not ready:
                        continue
                    data = os.read(fd, _READ_CHUNK)
                else:
                    data = reader(_READ_CHUNK)
            except (OSError, ValueError) as exc:    # closed stream, EIO on a hung-up tty
                log.warning("stdin: read failed (%s); treating it as end of input", exc)
                data = b""
            if not data:
                at_eof = True
                break
            self._emit_all(splitter.feed_chunk(data))
        self._emit_all(splitter.flush_lines())
        if at_eof:
            self.eof = True


def _fileno(stream) -> int | None:
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return fd if isinstance(fd, int) and fd >= 0 else None


class _Follow:
    """One open generation of a followed file."""

    def __init__(self, fh, max_line_bytes: int):
        st = os.fstat(fh.fileno())
        self.fh = fh
        self.ident = (st.st_dev, st.st_ino)
        self.pos = 0
        self.splitter = LineSplitter(max_line_bytes)
        self.retire_at = 0.0


class FileSource(Source):
    """Follows a file like `tail -F`.

    * start_at="end" skips what the file holds at start() (except a line still
      being written at its end); "beginning" reads it all. A file that appears
      later (created, or a new one after rotation) is always read from its start.
    * rotation (path renamed/removed/replaced: its inode changes): the old file
      is read to its end, and kept for `rotate_wait_s` in case its writer has
      not reopened yet, while the new path is read from its beginning;
    * truncation (size < position): read again from offset 0;
    * a missing file is waited for. A partial last line stays buffered until
      its newline arrives (or its file is rotated away).
    """

    kind = "file"

    def __init__(self, queue: EventQueue, path: str, *, start_at: str = "end",
                 poll_interval_s: float = 0.25, rotate_wait_s: float = 1.0,
                 max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, config: SourceConfig | None = None):
        config = config or SourceConfig(type="file", path=os.fspath(path), start_at=start_at,
                                        poll_interval_s=poll_interval_s, rotate_wait_s=rotate_wait_s)
        super().__init__(config, queue, max_line_bytes)
        self.path = config.path
        self.rotations = 0
        self.truncations = 0
        self._cur: _Follow | None = None
        self._old: list[_Follow] = []
        self._open_error: str | None = None

    @property
    def origin(self) -> str:
        return f"file:{self.path}"

    def _open(self) -> None:
        self._cur = self._try_open()
        if self._cur is not None and self.config.start_at == "end":
            self._seek_to_end(self._cur)

    def _try_open(self) -> _Follow | None:
        try:
            fh = open(self.path, "rb", buffering=0)  # noqa: SIM115 - closed in _close
        except FileNotFoundError:
            return None
        except OSError as exc:
            msg = f"{exc.strerror or exc}"
            if msg != self._open_error:
                log.warning("%s: cannot open (%s); will retry", self.origin, msg)
                self._open_error = msg
            return None
        try:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                if self._open_error != "not a regular file":
                    log.warning("%s: not a regular file; will retry", self.origin)
                    self._open_error = "not a regular file"
                fh.close()
                return None
            self._open_error = None
            return _Follow(fh, self.max_line_bytes)
        except OSError:
            fh.close()
            return None

    def _seek_to_end(self, f: _Follow) -> None:
        """Position at the end, but back at the start of a line being written."""
        size = os.fstat(f.fh.fileno()).st_size
        window = min(size, self.max_line_bytes + 2)
        f.fh.seek(size - window)
        tail = f.fh.read(window) or b""
        nl = tail.rfind(b"\n")
        if nl >= 0:
            f.pos = size - window + nl + 1
        elif window == size:
            f.pos = 0                          # the whole file is one unfinished line
        else:
            f.pos = size                       # an unfinished line already over the limit:
            f.splitter._discarding = True      # skip its remainder rather than emit a fragment
        f.fh.seek(f.pos)

    def _drain(self, f: _Follow) -> bool:
        """Read what `f` holds now (until EOF or stop); True if anything came."""
        got = False
        while not self._stop.is_set():
            try:
                data = f.fh.read(_READ_CHUNK)
            except OSError as exc:
                log.warning("%s: read failed (%s)", self.origin, exc)
                return got
            if not data:
                return got
            got = True
            f.pos += len(data)
            self._emit_all(f.splitter.feed_chunk(data))
        return got

    def _close(self, f: _Follow) -> None:
        self._emit_all(f.splitter.flush_lines())
        try:
            f.fh.close()
        except OSError:
            pass

    def _check_rotation(self, f: _Follow) -> None:
        try:
            st = os.stat(self.path)
            ident = (st.st_dev, st.st_ino)
        except OSError:
            ident = None
        if ident != f.ident:
            # Renamed away, removed or replaced: finish the old file on the side.
            self.rotations += 1
            f.retire_at = time.monotonic() + self.config.rotate_wait_s
            self._old.append(f)
            self._cur = None
            return
        try:
            size = os.fstat(f.fh.fileno()).st_size
        except OSError:
            return
        if size < f.pos:
            self.truncations += 1
            self._emit_all(f.splitter.flush_lines())
            f.fh.seek(0)
            f.pos = 0

    def _run(self) -> None:
        poll = self.config.poll_interval_s
        try:
            while not self._stop.is_set():
                progressed = False
                if self._cur is None:
                    self._cur = self._try_open()     # appeared after start/rotation: from its start
                if self._cur is not None:
                    progressed |= self._drain(self._cur)
                for old in list(self._old):
                    if self._drain(old):
                        progressed = True
                        old.retire_at = time.monotonic() + self.config.rotate_wait_s
                    elif time.monotonic() >= old.retire_at:
                        self._old.remove(old)
                        self._close(old)
                if self._stop.is_set():
                    break
                if self._cur is not None:
                    self._check_rotation(self._cur)
                    if self._cur is None:
                        continue                     # look for the new file right away
                if not progressed:
                    self._stop.wait(poll)
        finally:
            for f in self._old + ([self._cur] if self._cur is not None else []):
                self._close(f)
            self._old, self._cur = [], None


class _StreamListener(Source):
    """A listening stream socket, one thread per connection, newline framing,
    back-pressure through blocking `put`."""

    def __init__(self, config: SourceConfig, queue: EventQueue, max_line_bytes: int):
        super().__init__(config, queue, max_line_bytes)
        self.connections = 0          # accepted in total
        self.rejected = 0             # refused because max_connections were open
        self._sock: socket.socket | None = None
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._conns_lock = threading.Lock()

    def _listen(self, sock: socket.socket) -> None:
        sock.listen(min(128, max(8, self.config.max_connections)))
        sock.settimeout(_POLL_S)
        self._sock = sock

    def _wake(self) -> None:
        socks = [self._sock] if self._sock is not None else []
        with self._conns_lock:
            socks += list(self._conns)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)     # wakes accept()/recv() blocked in other threads
            except OSError:
                pass

    def join(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        done = super().join(timeout)
        with self._conns_lock:
            threads = list(self._conns.values())
        for t in threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
            done = done and not t.is_alive()
        return done

    def _run(self) -> None:
        sock = self._sock
        assert sock is not None
        try:
            while not self._stop.is_set():
                try:
                    conn, _peer = sock.accept()
                except (socket.timeout, BlockingIOError, InterruptedError):
                    continue
                except OSError as exc:
                    if self._stop.is_set():
                        break
                    log.warning("%s: accept failed (%s)", self.origin, exc)
                    self._stop.wait(_POLL_S)
                    continue
                with self._conns_lock:
                    if len(self._conns) >= self.config.max_connections or self._stop.is_set():
                        self.rejected += 1
                        conn.close()
                        continue
                    self.connections += 1
                    t = threading.Thread(target=self._serve, args=(conn,), daemon=True,
                                         name=f"jenga-conn-{self.origin}")
                    self._conns[conn] = t
                t.start()
        finally:
            sock.close()
            self._closed_listener()

    def _closed_listener(self) -> None:
        pass

    def _serve(self, conn: socket.socket) -> None:
        splitter = LineSplitter(self.max_line_bytes)
        try:
            conn.settimeout(_POLL_S)
            while not self._stop.is_set():
                try:
                    data = conn.recv(_READ_CHUNK)
                except socket.timeout:
                    continue
                except OSError:
                    break
                if not data:
                    break
                # Blocks while the queue is full: we stop reading, the kernel
                # buffers fill and TCP flow control stalls the sender.
                self._emit_all(splitter.feed_chunk(data))
            self._emit_all(splitter.flush_lines())
        except Exception:  # noqa: BLE001
            log.exception("%s: connection handler failed", self.origin)
        finally:
            conn.close()
            with self._conns_lock:
                self._conns.pop(conn, None)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class TcpSource(_StreamListener):
    """Newline-delimited events over TCP (syslog-style), loopback by default.
    `port=0` picks a free port; `address` holds the bound (host, port)."""

    kind = "tcp"

    def __init__(self, queue: EventQueue, port: int, host: str = "127.0.0.1", *,
                 max_connections: int = 64, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
                 config: SourceConfig | None = None):
        config = config or SourceConfig(type="tcp", host=host, port=port,
                                        max_connections=max_connections)
        super().__init__(config, queue, max_line_bytes)
        self.address: tuple[str, int] | None = None

    @property
    def origin(self) -> str:
        host, port = self.address or (self.config.host, self.config.port)
        return f"tcp:{_hostport(host, port)}"

    def _open(self) -> None:
        sock = socket.socket(_family(self.config.host), socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.config.host, self.config.port))
            self._listen(sock)
        except OSError as exc:
            sock.close()
            raise ConfigError(f"tcp source: cannot listen on "
                              f"{_hostport(self.config.host, self.config.port)}: "
                              f"{exc.strerror or exc}") from None
        self.address = tuple(sock.getsockname()[:2])


class UnixSource(_StreamListener):
    """Newline-delimited events over a unix stream socket at `path` (mode
    0o660 by default). A stale socket file is replaced on start; the file is
    removed on stop. Refuses to replace anything but a dead socket."""

    kind = "unix"

    def __init__(self, queue: EventQueue, path: str, *, mode: int = 0o660,
                 max_connections: int = 64, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
                 config: SourceConfig | None = None):
        config = config or SourceConfig(type="unix", path=os.fspath(path), mode=mode,
                                        max_connections=max_connections)
        super().__init__(config, queue, max_line_bytes)
        self.path = config.path
        self._ident: tuple[int, int] | None = None

    @property
    def origin(self) -> str:
        return f"unix:{self.path}"

    def _open(self) -> None:
        if not hasattr(socket, "AF_UNIX"):
            raise ConfigError("unix source: unix sockets are not available on this platform")
        self._remove_stale()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(self.path)
            st = os.stat(self.path)
            self._ident = (st.st_dev, st.st_ino)
            os.chmod(self.path, self.config.mode)     # before listen(): nobody can connect yet
            self._listen(sock)
        except OSError as exc:
            sock.close()
            self._unlink_own()
            raise ConfigError(f"unix source: cannot listen on {self.path}: "
                              f"{exc.strerror or exc}") from None

    def _remove_stale(self) -> None:
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise ConfigError(f"unix source: {self.path} exists and is not a socket; "
                              f"refusing to replace it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            probe.connect(self.path)
        except (ConnectionRefusedError, FileNotFoundError):
            pass                                          # stale: nobody listens on it
        except OSError as exc:
            raise ConfigError(f"unix source: cannot check existing socket {self.path}: "
                              f"{exc.strerror or exc}") from None
        else:
            raise ConfigError(f"unix source: another process is listening on {self.path}")
        finally:
            probe.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def _unlink_own(self) -> None:
        """Remove the socket file if it is still the one we created."""
        if self._ident is None:
            return
        try:
            st = os.lstat(self.path)
            if (st.st_dev, st.st_ino) == self._ident:
                os.unlink(self.path)
        except OSError:
            pass
        self._ident = None

    def _wake(self) -> None:
        self._unlink_own()          # new clients fail right away
        super()._wake()

    def _closed_listener(self) -> None:
        self._unlink_own()


class UdpSource(Source):
    """Newline-delimited events over UDP, loopback by default. A datagram may
    hold several lines (its last one needs no newline). UDP cannot push back:
    lines that find the queue full are dropped and counted in `dropped`."""

    kind = "udp"

    def __init__(self, queue: EventQueue, port: int, host: str = "127.0.0.1", *,
                 recv_buffer_bytes: int = 4 * 1024 * 1024,
                 max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, config: SourceConfig | None = None):
        config = config or SourceConfig(type="udp", host=host, port=port,
                                        recv_buffer_bytes=recv_buffer_bytes)
        super().__init__(config, queue, max_line_bytes)
        self.address: tuple[str, int] | None = None
        self.datagrams = 0
        self.recv_buffer_bytes = 0   # what the kernel granted (Linux caps at net.core.rmem_max)
        self._sock: socket.socket | None = None

    @property
    def origin(self) -> str:
        host, port = self.address or (self.config.host, self.config.port)
        return f"udp:{_hostport(host, port)}"

    def _open(self) -> None:
        sock = socket.socket(_family(self.config.host), socket.SOCK_DGRAM)
        try:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.config.recv_buffer_bytes)
            except OSError as exc:
                log.warning("udp source: cannot set SO_RCVBUF=%d (%s)",
                            self.config.recv_buffer_bytes, exc)
            sock.bind((self.config.host, self.config.port))
        except OSError as exc:
            sock.close()
            raise ConfigError(f"udp source: cannot bind {_hostport(self.config.host, self.config.port)}: "
                              f"{exc.strerror or exc}") from None
        sock.settimeout(_POLL_S)
        self.recv_buffer_bytes = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        if self.recv_buffer_bytes < self.config.recv_buffer_bytes:
            log.warning("udp source: receive buffer is %d bytes, not the %d asked for "
                        "(raise net.core.rmem_max)", self.recv_buffer_bytes,
                        self.config.recv_buffer_bytes)
        self.address = tuple(sock.getsockname()[:2])
        self._sock = sock

    def _run(self) -> None:
        sock = self._sock
        assert sock is not None
        splitter = LineSplitter(self.max_line_bytes)
        try:
            while not self._stop.is_set():
                try:
                    data, _peer = sock.recvfrom(_UDP_MAX_DATAGRAM)
                except (socket.timeout, BlockingIOError, InterruptedError):
                    continue
                except OSError as exc:
                    if self._stop.is_set():
                        break
                    log.warning("%s: receive failed (%s)", self.origin, exc)
                    self._stop.wait(_POLL_S)
                    continue
                self.datagrams += 1
                framed = splitter.feed(data) + splitter.flush()   # each datagram stands alone
                self._emit_all(_unpair(framed), block=False)
        finally:
            sock.close()


def build_source(cfg: SourceConfig, queue: EventQueue, max_line_bytes: int, *,
                 stdin: IO[bytes] | None = None) -> Source:
    """The source `cfg` describes, not yet started. `stdin` replaces
    sys.stdin.buffer for a stdin source (tests, embedding)."""
    max_line_bytes = check_max_line_bytes(max_line_bytes)
    if cfg.type == "stdin":
        return StdinSource(queue, stdin, max_line_bytes=max_line_bytes, config=cfg)
    if cfg.type == "file":
        return FileSource(queue, cfg.path, max_line_bytes=max_line_bytes, config=cfg)
    if cfg.type == "tcp":
        return TcpSource(queue, cfg.port, cfg.host, max_line_bytes=max_line_bytes, config=cfg)
    if cfg.type == "udp":
        return UdpSource(queue, cfg.port, cfg.host, max_line_bytes=max_line_bytes, config=cfg)
    if cfg.type == "unix":
        return UnixSource(queue, cfg.path, max_line_bytes=max_line_bytes, config=cfg)
    raise ConfigError(f"source: type: unknown source type {cfg.type!r}")
