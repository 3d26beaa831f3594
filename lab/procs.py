"""Processes the lab starts: each in its own process group, tracked by PID, always ended.

Nothing is started through a shell. `stop` sends SIGTERM to the process group the
lab created, waits, then SIGKILL; `stop_all` does that for every process still
running, newest first. Output goes to one log file per process.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Proc:
    label: str
    argv: list[str]
    popen: subprocess.Popen[bytes]
    log: Path
    started: float = field(default_factory=time.time)
    ended: float | None = None
    stopped_by_lab: bool = False

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> int | None:
        rc = self.popen.poll()
        if rc is not None and self.ended is None:
            self.ended = time.time()
        return rc


def in_netns(netns: str | None, argv: list[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv] if netns else list(argv)


class Processes:
    def __init__(self, logs: Path, env: dict[str, str] | None = None):
        self.logs = logs
        self.env = env
        self.running: list[Proc] = []

    def start(self, label: str, argv: list[str], netns: str | None, cwd: Path | None = None) -> Proc:
        """`argv` in namespace `netns` (None: on the host, said explicitly: the lab never does)."""
        self.logs.mkdir(parents=True, exist_ok=True)
        log = self.logs / f"{label}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                in_netns(netns, argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=cwd, env=self.env, start_new_session=True,
            )  # fmt: skip
        proc = Proc(label, argv, popen, log)
        self.running.append(proc)
        return proc

    def stop(self, proc: Proc, grace: float = 3.0, sig: int = signal.SIGTERM) -> int | None:
        if proc.poll() is None:
            proc.stopped_by_lab = True
            self._signal(proc, sig)
            try:
                proc.popen.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self._signal(proc, signal.SIGKILL)
                try:
                    proc.popen.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
        # A leader that exited is not signalled again (its PID may be reused): what it left
        # behind lives in the lab's namespaces, and the topology's teardown ends it there.
        rc = proc.poll()
        if proc in self.running:
            self.running.remove(proc)
        return rc

    def stop_all(self) -> None:
        for proc in reversed(list(self.running)):
            self.stop(proc, grace=2.0)

    @staticmethod
    def _signal(proc: Proc, sig: int) -> None:
        try:
            os.killpg(proc.pid, sig)  # the group the lab created (start_new_session): pgid == pid
        except (ProcessLookupError, PermissionError):
            pass
