"""A scenario file: the lab's hosts and the steps they run (who, what, when, how fast, seed).

    name: corpus
    seed: 7
    subnet: 10.77.0.0/24
    hosts:
      victim:   {role: victim, address: 10.77.0.10, services: [http, ssh, ftp, dns, dns_tunnel]}
      office1:  {role: benign, address: 10.77.0.21}
      attacker: {role: attacker, address: 10.77.0.66}
    steps:
      - {name: browse, tool: web, host: office1, at: 0, duration: 300, pages_per_minute: 8}
      - {name: syn-scan, tool: nmap, host: attacker, at: 60, duration: 40, scan: syn, ports: 1-1024}

Checked when loaded, with the key path of what is wrong: host names, addresses in
the subnet, one victim with the services the steps need, attack tools only on
attacker hosts and benign ones only on benign hosts, no two attack steps of one
host at once (so a flow's label is never ambiguous), spoofed sources in the
subnet or a documentation range, and every step inside `duration_s`.
"""

from __future__ import annotations

import ipaddress
import itertools
from pathlib import Path
from typing import Annotated, Any, Literal

from jenga_edge.contract.typed import Config, Invalid, convert, doc, load_yaml

from . import addresses
from .errors import LabError
from .labels import SLACK_AFTER, SLACK_BEFORE
from .tools import AnyStep, Step
from .tools.base import NAME

BRIDGE = "br"  # the namespace of the lab's bridge is jl<id>-br
# Between two attacks of one host: the labeller's slack on both sides, so no record can match both.
GAP_S = SLACK_BEFORE + SLACK_AFTER

SERVICES = ("http", "ssh", "ftp", "dns", "dns_tunnel")
Service = Literal["http", "ssh", "ftp", "dns", "dns_tunnel"]
HOST_NAME = r"^[a-z][a-z0-9]{0,9}$"  # short: namespace and interface names are built from it


class Host(Config, kw_only=True):
    role: Literal["victim", "benign", "attacker"]
    address: Annotated[str, doc("IPv4 address in the scenario's subnet")]
    services: list[Service] = []

    def __post_init__(self) -> None:
        if self.services and self.role != "victim":
            raise Invalid("services", "only the victim runs services")
        if len(set(self.services)) != len(self.services):
            raise Invalid("services", "a service is named twice")
        if "dns_tunnel" in self.services and "dns" not in self.services:
            raise Invalid("services", "dns_tunnel needs dns (dnsmasq hands the tunnel's queries to iodined)")


class Scenario(Config, kw_only=True):
    name: Annotated[str, doc("name of the scenario (outputs are named after it)", pattern=NAME)]
    seed: Annotated[
        int, doc("seed of every random choice; a step's own seed defaults to 1000 x this + its index", ge=0)
    ] = 0
    subnet: Annotated[str, doc("the lab's private IPv4 subnet; must not overlap the host's")] = "10.77.0.0/24"
    duration_s: Annotated[float, doc("hard bound on the traffic phase, seconds", gt=0, le=7200)]
    hosts: dict[Annotated[str, doc("host name", pattern=HOST_NAME)], Host]
    steps: Annotated[list[AnyStep], doc("what runs, when", min_length=1)]

    def __post_init__(self) -> None:
        try:
            net = addresses.network(self.subnet)
        except ValueError as exc:
            raise Invalid("subnet", str(exc)) from None
        self._check_hosts(net)
        self._check_steps(net)

    # ------------------------------------------------------------------ checks

    def _check_hosts(self, net: ipaddress.IPv4Network) -> None:
        seen: dict[ipaddress.IPv4Address, str] = {}
        for name, host in self.hosts.items():
            if name == BRIDGE:
                raise Invalid(f"hosts.{name}", f"{BRIDGE!r} is the bridge's namespace: name the host otherwise")
            try:
                addr = addresses.host_in(net, host.address)
            except ValueError as exc:
                raise Invalid(f"hosts.{name}.address", str(exc)) from None
            if addr in seen:
                raise Invalid(f"hosts.{name}.address", f"{addr} is also {seen[addr]}'s address")
            seen[addr] = name
        victims = [n for n, h in self.hosts.items() if h.role == "victim"]
        if len(victims) != 1:
            raise Invalid("hosts", f"expected exactly one host with role victim, found {len(victims)}")

    def _check_steps(self, net: ipaddress.IPv4Network) -> None:
        names: set[str] = set()
        victim = self.hosts[self.victim]
        for i, step in enumerate(self.steps):
            where = f"steps[{i}]"
            if step.name in names:
                raise Invalid(f"{where}.name", f"{step.name!r} names two steps")
            names.add(step.name)
            host = self.hosts.get(step.host)
            if host is None:
                raise Invalid(f"{where}.host", f"no host {step.host!r}; hosts: {', '.join(self.hosts)}")
            wanted = "attacker" if step.role == "attack" else "benign"
            if host.role != wanted:
                kind = (
                    "an attack tool: it runs on an attacker"
                    if wanted == "attacker"
                    else "a benign tool: it runs on a benign"
                )
                raise Invalid(f"{where}.host", f"{step.tool} is {kind} host, {step.host!r} is {host.role}")
            need = step.needs()
            if need and need not in victim.services:
                raise Invalid(f"{where}.tool", f"{step.tool} needs the victim's {need!r} service")
            if step.at + step.duration > self.duration_s:
                raise Invalid(f"{where}.duration", f"the step ends at {step.at + step.duration:g} s, "
                              f"after duration_s ({self.duration_s:g})")  # fmt: skip
            for j, spoof in enumerate(step.spoofed()):
                try:
                    addr = addresses.spoofable(net, spoof)
                    if addr in (net.network_address, net.broadcast_address):
                        raise ValueError(f"{addr} is the lab subnet's network or broadcast address")
                except ValueError as exc:
                    raise Invalid(f"{where}.spoof", str(exc)) from None
                if str(addr) in {h.address for h in self.hosts.values()}:
                    raise Invalid(f"{where}.spoof", f"{addr} is a lab host's address (index {j})")
        self._check_overlaps()

    def _check_overlaps(self) -> None:
        by_host: dict[str, list[tuple[int, Step]]] = {}
        for i, step in enumerate(self.steps):
            if step.role == "attack":
                by_host.setdefault(step.host, []).append((i, step))
        for runs in by_host.values():
            runs.sort(key=lambda r: r[1].at)
            for (_, a), (j, b) in itertools.pairwise(runs):
                if b.at < a.at + a.duration + GAP_S:
                    raise Invalid(f"steps[{j}].at", f"{b.name!r} starts less than {GAP_S:g} s after {a.name!r} on host "
                                  f"{a.host!r} ends: one attack at a time per host keeps labels certain")  # fmt: skip

    # ------------------------------------------------------------------ views

    @property
    def victim(self) -> str:
        return next(n for n, h in self.hosts.items() if h.role == "victim")

    def step_seed(self, index: int) -> int:
        step = self.steps[index]
        return step.seed if step.seed is not None else self.seed * 1000 + index

    def binaries(self) -> list[str]:
        """Every program the scenario runs, services included."""
        from .services import SERVICE_BINARIES

        need = {"ip", "tcpdump", "suricata"}
        for svc in self.hosts[self.victim].services:
            need.update(SERVICE_BINARIES[svc])
        for step in self.steps:
            need.update(step.binaries)
        return sorted(need)


def parse(data: Any, source: str = "scenario") -> Scenario:
    return convert(Scenario, data, source, error=LabError)


def load(path: str | Path) -> Scenario:
    try:
        data = load_yaml(path)
    except Exception as exc:  # noqa: BLE001 (ConfigError -> the lab's own error, same message)
        raise LabError(str(exc)) from None
    return parse(data, str(path))
