"""Running under systemd: the sd_notify protocol and journal log levels, with no dependency.

sd_notify is one datagram of ``KEY=VALUE`` lines to the AF_UNIX socket named by
``$NOTIFY_SOCKET`` (a path, or ``@name`` for the abstract namespace). The agent
sends (packaging/systemd/jenga-edge.service is ``Type=notify``):

* ``READY=1`` once the first pipeline is built: bundle verified, sessions
  created, sinks and sources open (Agent.run);
* ``WATCHDOG=1`` from the scoring loop, every ``WatchdogSec/2`` at most, only
  while the loop turns (it scores a batch or waits for one as usual): a loop
  stuck in a batch (a blocked write, a hung session) stops pinging and systemd
  restarts the service (``Restart=on-watchdog``/``on-failure``);
* ``RELOADING=1`` (with ``MONOTONIC_USEC``) then ``READY=1`` around a SIGHUP
  reload, ``STOPPING=1`` when the stop begins, and ``STATUS=`` lines (what it
  serves, then its counts) that ``systemctl status`` shows.

Without ``$NOTIFY_SOCKET`` everything here is a no-op. A failed send is counted
(``jenga_systemd_notify_failures_total``) and logged, rate-limited; it never
stops the agent. The variables are taken out of the environment
(`Notifier.from_environ`), as sd_notify's ``unset_environment`` does, so the
commands an ``exec`` action starts do not inherit them.

Journal: when stderr is the journal (``$JOURNAL_STREAM`` names stderr's device
and inode), `JournalLog` starts each line with its syslog priority (``<6>``
info, ``<4>`` warning, ``<3>`` error), which journald strips and records as the
entry's level; the agent's lines carry no timestamp of their own (journald adds
one). `PrefixedStream` gives the same to whatever else writes to stderr then.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Callable, MutableMapping
from typing import Any, TextIO

ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
STATUS_EVERY_S = 10.0  # STATUS= with the counts at most this often (a ping carries it sooner)
INFO, WARNING, ERR = 6, 4, 3


class Notifier:
    """sd_notify to one socket; `address` None: every call does nothing."""

    def __init__(
        self, address: str | None = None, watchdog_s: float | None = None, clock: Callable[[], float] = time.monotonic
    ):
        self.clock = clock
        self.address = _socket_address(address) if address else None
        self.watchdog_s = watchdog_s if self.address is not None else None
        self.sent = self.failed = 0
        self._sock: socket.socket | None = None
        self._next_ping = 0.0
        self._next_status = 0.0
        self._count: Callable[[], None] = lambda: None
        self._warn: Callable[[str, str], None] = lambda key, message: None

    @classmethod
    def from_environ(cls, environ: MutableMapping[str, str] | None = None, pid: int | None = None) -> Notifier:
        """The notifier systemd set up for this process; the variables are removed from `environ`.
        WATCHDOG_USEC counts only when WATCHDOG_PID is unset or names this process."""
        env = os.environ if environ is None else environ
        address, usec, for_pid = (env.pop(k, None) for k in ENV)
        mine = for_pid is None or for_pid.strip() == str(os.getpid() if pid is None else pid)
        watchdog_s = int(usec) / 1e6 if mine and usec and usec.strip().isdigit() and int(usec) > 0 else None
        return cls(address or None, watchdog_s)

    def attach(self, count: Callable[[], None], warn: Callable[[str, str], None]) -> None:
        """Where a failed send is counted (a metric's inc) and said (FailureLog.warn)."""
        self._count, self._warn = count, warn

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def send(self, *fields: str) -> bool:
        """One datagram of `fields` (``KEY=VALUE``); False when it could not be sent."""
        if self.address is None:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            # never blocks the scoring loop: a full socket queue is a failed (counted) send
            self._sock.sendto("\n".join(fields).encode("utf-8", "replace"), socket.MSG_DONTWAIT, self.address)
        except OSError as exc:
            self.failed += 1
            self._count()
            self._warn("systemd:notify", f"systemd notify to {self.address!r} failed: {exc}")
            return False
        self.sent += 1
        return True

    def ready(self, status: str) -> None:
        self.send("READY=1", f"STATUS={_one_line(status)}")
        self._next_ping = 0.0  # the first ping with the READY, as the watchdog runs from here

    def reloading(self) -> None:
        # MONOTONIC_USEC: what Type=notify-reload (systemd 253+) requires with RELOADING=1
        self.send("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}",
                  "STATUS=reloading the config and bundle")  # fmt: skip

    def stopping(self) -> None:
        if self.address is not None:
            self.send("STOPPING=1", "STATUS=stopping: draining the sources, flushing the sinks")
            self.address = None  # said once; nothing more after it (a ping now would be a lie)
            self.close()

    def alive(self, status: Callable[[], str]) -> None:
        """Called each turn of the scoring loop: a watchdog ping (WatchdogSec/2 apart) and the
        STATUS counts (STATUS_EVERY_S apart), whichever is due; costs a clock read otherwise."""
        if self.address is None:
            return
        now = self.clock()
        if now < self._next_ping and now < self._next_status:
            return
        fields = [f"STATUS={_one_line(status())}"]
        if self.watchdog_s is not None:
            fields.insert(0, "WATCHDOG=1")
            self._next_ping = now + self.watchdog_s / 2
        else:
            self._next_ping = float("inf")
        self._next_status = now + STATUS_EVERY_S
        self.send(*fields)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _socket_address(value: str) -> str | bytes:
    """$NOTIFY_SOCKET: a path, or '@name' for the abstract namespace (a leading NUL byte)."""
    return b"\0" + value[1:].encode() if value.startswith("@") else value


def _one_line(text: str) -> str:
    return " ".join(text.split())  # a newline would start another KEY=VALUE field


def journal_stream(stream: TextIO | None = None, environ: MutableMapping[str, str] | None = None) -> bool:
    """True when `stream` (stderr) is connected to the journal: $JOURNAL_STREAM is
    'DEVICE:INODE' of that very descriptor (a redirected stderr is not the journal)."""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    try:
        dev, ino = (int(x) for x in value.split(":"))
        st = os.fstat((stream or sys.stderr).fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


class JournalLog:
    """The agent's log: one line per message on stderr; under the journal each line
    starts with its syslog priority. Call it for info; `.warning`, `.error`."""

    def __init__(self, stream: TextIO | None = None, journal: bool | None = None):
        self.stream = stream
        self.journal = journal_stream(stream) if journal is None else journal
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        self.write(INFO, line)

    def warning(self, line: str) -> None:
        self.write(WARNING, line)

    def error(self, line: str) -> None:
        self.write(ERR, line)

    def write(self, priority: int, text: str) -> None:
        stream = self.stream or sys.stderr  # sys.stderr at the time of the call (tests swap it)
        out = _prefixed(priority, text) if self.journal else text + "\n"
        with self._lock:
            stream.write(out)
            stream.flush()


def _prefixed(priority: int, text: str) -> str:
    # every line gets one: an unprefixed line (a message with a newline) would be logged at
    # the unit's default level, and text that starts with '<N>' could not pick its own level
    return "".join(f"<{priority}>{line}\n" for line in text.split("\n"))


class PrefixedStream:
    """Under the journal, what reaches stderr outside the agent's log (the command's
    `error:` line, a traceback, a library's warning) gets a priority too: ``<3>`` for
    an `error:` line, ``<4>`` for anything else: nothing there is routine."""

    def __init__(self, stream: TextIO):
        self._stream = stream
        self._partial = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            lines = (self._partial + text).split("\n")
            self._partial = lines.pop()
            if lines:
                self._stream.write("".join(_prefixed(ERR if ln.startswith("error:") else WARNING, ln) for ln in lines))
                self._stream.flush()
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if self._partial:
                self._stream.write(_prefixed(WARNING, self._partial))
                self._partial = ""
            self._stream.flush()

    def __getattr__(self, name: str) -> Any:  # fileno, encoding, isatty ... of the real stream
        return getattr(self._stream, name)
