"""The lab's network: one namespace per host, all joined by a bridge in a namespace of its own.

    jl<id>-br:     br0 (no address), one veth end per host
    jl<id>-<host>: eth0 (the veth's other end) with the host's address, lo

Every link is created inside a lab namespace (`ip -n`), so the host never sees
one; the only route a host has is its connected subnet (no default route), so
no packet can leave. IPv6 is off in every lab namespace (no router solicitations
in the capture). Teardown ends what still runs in the lab's namespaces, by PID,
then deletes them (which deletes their links).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from . import addresses
from .errors import LabError
from .scenario import BRIDGE, Scenario

NETNS_DIR = "/run/netns"  # where `ip netns add` keeps its namespaces


@dataclass(frozen=True)
class HostNet:
    name: str
    netns: str
    address: str
    mac: str


class Topology:
    def __init__(self, scenario: Scenario, run_id: str | None = None):
        self.run_id = run_id or secrets.token_hex(2)
        self.prefix = f"jl{self.run_id}-"
        self.net = addresses.network(scenario.subnet)
        self.bridge_ns = self.prefix + BRIDGE
        self.hosts = {
            name: HostNet(name, self.prefix + name, h.address, addresses.mac_for(addresses.address(h.address)))
            for name, h in scenario.hosts.items()
        }
        self.created: list[str] = []

    # ------------------------------------------------------------------ commands

    def _ip(self, *args: str) -> None:
        """`ip` inside a lab namespace, or adding/deleting one: nothing else is allowed."""
        ours = args[:1] == ("-n",) and args[1].startswith(self.prefix)
        ns_op = args[:2] in (("netns", "add"), ("netns", "del")) and args[2].startswith(self.prefix)
        if not (ours or ns_op):
            raise LabError(f"refusing to run ip {' '.join(args)}: outside the lab's namespaces")
        out = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
        if out.returncode != 0:
            raise LabError(f"ip {' '.join(args)} failed: {out.stderr.strip()[:200]}")

    def _sysctl(self, netns: str, *settings: str) -> None:
        argv = ["ip", "netns", "exec", netns, "sysctl", "-q", "-w", *settings]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        if out.returncode != 0:
            raise LabError(f"sysctl in {netns} failed: {out.stderr.strip()[:200]}")

    # ------------------------------------------------------------------ build

    def build(self) -> None:
        self._add_netns(self.bridge_ns)
        self._ip("-n", self.bridge_ns, "link", "add", "br0", "type", "bridge", "stp_state", "0")
        self._ip("-n", self.bridge_ns, "link", "set", "br0", "up")
        for host in self.hosts.values():
            self._add_netns(host.netns)
            veth = f"v-{host.name}"
            self._ip("-n", self.bridge_ns, "link", "add", veth, "type", "veth", "peer", "name", "eth0",
                     "netns", host.netns)  # fmt: skip
            self._ip("-n", self.bridge_ns, "link", "set", veth, "master", "br0", "up")
            self._ip("-n", host.netns, "link", "set", "eth0", "address", host.mac)
            self._ip("-n", host.netns, "addr", "add", f"{host.address}/{self.net.prefixlen}", "dev", "eth0")
            self._ip("-n", host.netns, "link", "set", "eth0", "up")
            self._ip("-n", host.netns, "link", "set", "lo", "up")
        self._check_routes()

    def _add_netns(self, netns: str) -> None:
        self.created.append(netns)  # first: a signal right after the add must not leak it
        self._ip("netns", "add", netns)
        self._sysctl(netns, "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")

    def _check_routes(self) -> None:
        """Each host has its connected subnet and nothing else: no way out of the lab."""
        for host in self.hosts.values():
            out = subprocess.run(["ip", "-n", host.netns, "-4", "route", "show"], capture_output=True, text=True,
                                 timeout=30, check=False).stdout.split("\n")  # fmt: skip
            routes = [r.split()[0] for r in out if r.strip()]
            if routes != [str(self.net)]:
                raise LabError(f"{host.netns}: unexpected routes {routes}; the lab only has {self.net}")

    # ------------------------------------------------------------------ teardown

    def pids(self) -> list[tuple[str, int]]:
        found: list[tuple[str, int]] = []
        for netns in self.created:
            if not Path(NETNS_DIR, netns).exists():
                continue
            out = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True, timeout=30,
                                 check=False)  # fmt: skip
            found += [(netns, int(p)) for p in out.stdout.split() if p.isdigit()]
        return found

    @staticmethod
    def _signal_in(netns: str, pid: int, sig: int) -> None:
        """Signal `pid` only if it is still a process inside `netns`: through a pidfd, so a
        PID reused by another process after the check is never signalled."""
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return
        try:
            if os.stat(f"/proc/{pid}/ns/net").st_ino != os.stat(Path(NETNS_DIR, netns)).st_ino:
                return
            signal.pidfd_send_signal(fd, sig)
        except (ProcessLookupError, FileNotFoundError):
            pass
        finally:
            os.close(fd)

    def teardown(self) -> list[str]:
        """End what still runs in the lab's namespaces, delete them; return what went wrong."""
        problems: list[str] = []
        for sig in (signal.SIGTERM, signal.SIGKILL):
            left = self.pids()
            for netns, pid in left:
                self._signal_in(netns, pid, sig)
            if left:
                time.sleep(1.0)
        if self.pids():
            problems.append(f"processes still in the lab's namespaces: {self.pids()}")
        for netns in reversed(self.created):
            if not Path(NETNS_DIR, netns).exists():
                continue  # never made (a failed add) or already gone
            out = subprocess.run(["ip", "netns", "del", netns], capture_output=True, text=True, timeout=30, check=False)
            if out.returncode != 0:
                problems.append(f"ip netns del {netns}: {out.stderr.strip()[:200]}")
        self.created.clear()
        return problems
