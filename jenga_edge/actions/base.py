"""What every action is, and what the kinds share.

An action takes an alert (a plain dict: timestamp, rule, priority, task,
score, threshold, src_ip, dest_ip, dest_port, fields) and returns an
*outcome* dict, which the agent appends to ``alert["actions"]``::

    {"type": "firewall", "name": "block", "target": "inet jenga blocklist", "dry_run": True,
     "argv": ["nft", "add", "element", ...], "result": "dry_run", "reason": "..."}

``result`` is one of ``ok``, ``failed``, ``skipped``, ``dry_run``, ``spooled``
(and ``queued`` for a slow action handed to its background worker, ``dropped``
when its queue's policy discarded it; the final outcome follows as an
``action_result`` record keyed by the alert's ``alert_id``). An action
never raises because of what an alert holds: a bad value is a ``skipped``
outcome with the reason. Bad *settings* are refused when the config loads.

Alert values are untrusted (they come from the network). Nothing here goes
through a shell: commands run with ``shell=False`` and a fixed argv, and every
alert value that reaches an argv is parsed first (addresses with
``ipaddress.ip_address``, ports as integers, scores as floats, names against a
strict pattern) and written back in canonical form, never as the raw text.
"""

from __future__ import annotations

import ipaddress
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Protocol

from ..contract.typed import Invalid, doc
from ..kinds import TaggedConfig
from ..output_stage import QueueConfig

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

IDENT = re.compile(r"[A-Za-z0-9_-]{1,32}")
MAX_REASON = 200

RESULTS = ("ok", "failed", "skipped", "dry_run", "spooled", "queued", "dropped", "in_flight_at_stop")


class ActionConfig(TaggedConfig, kw_only=True):
    """Base of every action kind's Config."""

    queue: Annotated[
        QueueConfig | None,
        doc(
            "the output queue a blocking action (a webhook; a live exec or firewall) runs behind (default: size 10000)"
        ),
    ] = None


@dataclass
class ActionContext:
    """What `build` gets besides the config."""

    name: str = ""  # the action's name in the config


class Action(Protocol):
    """What the agent runs for an alert."""

    # Read-only for the agent: a plain attribute or a property.
    @property
    def type(self) -> str:
        """The kind."""

    @property
    def target(self) -> str:
        """What it acts on, for outcomes and logs (no secrets)."""

    @property
    def slow(self) -> bool:
        """May block (a network send, a command that runs): run behind the output stage,
        off the scoring thread. A dry run runs nothing and stays inline."""

    def run(self, alert: Mapping[str, Any]) -> dict[str, Any]:
        """Act on one alert; return its outcome. Raises only on a bug."""

    def addresses(self, alert: Mapping[str, Any]) -> list[Any]:
        """The alert values this action would touch: the agent's allowlist protects them."""


def short(value: Any, limit: int = 60) -> str:
    """repr() of an untrusted value, cut so a hostile alert cannot flood the log."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def outcome(
    type_: str, target: str, *, dry_run: bool, argv: list[str] | None, result: str, reason: str, **extra: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "type": type_,
        "target": target,
        "dry_run": dry_run,
        "argv": list(argv) if argv is not None else None,
        "result": result,
        "reason": reason,
    }
    out.update(extra)
    return out


def parse_address(value: Any) -> tuple[IpAddress | None, str]:
    """Parse one untrusted address; return (address, "") or (None, why not).

    Only a ``str`` holding exactly one IPv4/IPv6 address is accepted (an int
    would be read as a packed address by ``ip_address``, so it is refused).
    IPv6 zone ids (``fe80::1%eth0``) are refused: ``ipaddress`` keeps any text
    after the ``%``, which would reach nft's own parser. An IPv4-mapped IPv6
    address is returned as the IPv4 address it carries.
    """
    if not isinstance(value, str):
        return None, f"invalid address: expected a string, got {type(value).__name__} {short(value)}"
    if len(value) > 64:
        return None, f"invalid address: {short(value)} is too long"
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return None, f"invalid address: {short(value)}"
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.scope_id is not None:
            return None, f"invalid address: {short(value)} has a zone id"
        if addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
    return addr, ""


def first_line(data: bytes | str | None) -> str:
    if not data:
        return ""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line[:MAX_REASON]
    return ""


# Commands running now (on action workers): the agent ends those still running when it
# stops, so none outlives it (a child left to init would act after the agent said it stopped).
_running: dict[int, tuple[Any, int]] = {}  # pid -> (Popen, the thread running it)
_ended_at_stop: set[int] = set()
_running_lock = threading.Lock()


def run_command(argv: list[str], timeout_s: float, tool: str) -> tuple[str, str, int | None]:
    """Run argv without a shell; return (result, reason, exit status)."""
    import subprocess  # here, not at import: only agents that act pay for it

    try:
        proc = subprocess.Popen(
            argv, shell=False, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except FileNotFoundError:
        return "failed", f"{tool} not found: {argv[0]}", None
    except PermissionError:
        return "failed", f"{tool} not executable: {argv[0]}", None
    except OSError as exc:
        return "failed", f"{tool} could not start: {exc}", None
    with _running_lock:
        _running[proc.pid] = (proc, threading.get_ident())
    try:
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return "failed", f"{tool} timed out after {timeout_s:g}s", None
    finally:
        with _running_lock:
            _running.pop(proc.pid, None)
            ended = proc.pid in _ended_at_stop
            _ended_at_stop.discard(proc.pid)
    if ended:
        return "failed", f"{tool} was still running when the agent stopped: ended (pid {proc.pid})", None
    if proc.returncode != 0:
        detail = first_line(err) or first_line(out)
        reason = f"{tool} exited with status {proc.returncode}"
        return "failed", f"{reason}: {detail}" if detail else reason, proc.returncode
    return "ok", f"{tool} succeeded", 0


def end_running_commands(threads: set[int]) -> list[int]:
    """At stop, after the action queues' drain: kill the commands that `threads` (the agent's
    action workers) started and that still run, by the PID held, and return their PIDs. Each
    one's worker then reports it failed, 'ended' (its in_flight_at_stop outcome is recorded)."""
    with _running_lock:
        procs = [p for p, thread in _running.values() if thread in threads]
        _ended_at_stop.update(p.pid for p in procs)
    for p in procs:
        try:
            p.kill()  # our own child, not yet reaped: its PID cannot be anyone else's
        except OSError:
            pass
    return [p.pid for p in procs]


def check_program(key: str, path: str, absolute: bool) -> None:
    """A program name looked up in PATH, or an absolute path (`absolute`: only that)."""
    if not isinstance(path, str) or not path or "\0" in path or path != path.strip():
        raise Invalid(key, f"expected a program name or absolute path, got {short(path)}")
    if (absolute or "/" in path) and not os.path.isabs(path):
        raise Invalid(key, f"expected an absolute path (the agent's working directory is not fixed), got {path!r}")


def check_ident(key: str, value: str) -> None:
    if not isinstance(value, str) or not IDENT.fullmatch(value):
        raise Invalid(key, f"expected a name of 1-32 letters, digits, '_' or '-', got {short(value)}")
