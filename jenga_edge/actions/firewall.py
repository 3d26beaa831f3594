"""`type: firewall`: block the alert's address with an nftables or ipset set element."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from ..contract.typed import Invalid, doc
from .base import ActionConfig, IpAddress, check_ident, check_program, outcome, parse_address, run_command, short


class Config(ActionConfig, tag="firewall", kw_only=True):
    """Add the alert's address to a blocklist set, with a timeout. Dry-run by default.

    The set must already exist (the agent only adds elements): for nftables,
    e.g. ``nft add set inet jenga blocklist '{ type ipv4_addr; flags timeout; }'``
    and a rule that drops ``ip saddr @blocklist`` (same for ``blocklist6`` with
    ``ipv6_addr``/``ip6 saddr``). For ipset, ``ipset create jenga-block hash:ip
    timeout 0`` (and ``family inet6`` for ``jenga-block6``); the iptables rule
    that uses the set is the gateway's firewall setup, or the set blocks nothing.
    """

    backend: Annotated[Literal["nftables", "ipset"], doc("which tool adds the element")] = "nftables"
    family: Annotated[str, doc("nftables table family (inet, ip, ip6, ...)")] = "inet"
    table: Annotated[str, doc("nftables table holding the sets")] = "jenga"
    set: Annotated[str, doc("nftables set for IPv4 addresses")] = "blocklist"
    set6: Annotated[str, doc("nftables set for IPv6 addresses")] = "blocklist6"
    ipset: Annotated[str, doc("ipset set for IPv4 addresses (backend ipset)")] = "jenga-block"
    ipset6: Annotated[str, doc("ipset set for IPv6 addresses (backend ipset)")] = "jenga-block6"
    ip_field: Annotated[str, doc("the alert key holding the address to block")] = "src_ip"
    timeout_s: Annotated[
        int,
        doc(
            "how long an element stays, seconds; 0 adds it without a timeout (the set's default applies)",
            ge=0,
            le=2147483,
        ),
    ] = 3600
    dry_run: Annotated[bool, doc("record the argv, run nothing (the safe default)")] = True
    nft_path: Annotated[str, doc("nft: a program name (looked up in PATH) or an absolute path")] = "nft"
    ipset_path: Annotated[str, doc("ipset: a program name or an absolute path")] = "ipset"
    command_timeout_s: Annotated[float, doc("kill the command after this", ge=0.1, le=300.0)] = 5.0
    allowlist: Annotated[
        list[str],
        doc(
            "addresses and networks never blocked, e.g. [10.0.0.0/8, 192.0.2.1]: the gateway itself, "
            "management hosts, upstream resolvers"
        ),
    ] = []

    def __post_init__(self) -> None:
        for key in ("family", "table", "set", "set6", "ipset", "ipset6"):
            check_ident(key, getattr(self, key))
        if not self.ip_field:
            raise Invalid("ip_field", "expected an alert key, got ''")
        check_program("nft_path", self.nft_path, absolute=False)
        check_program("ipset_path", self.ipset_path, absolute=False)
        self.allowlist_networks()  # raises on a bad entry

    def allowlist_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        nets = []
        for i, entry in enumerate(self.allowlist):
            try:
                nets.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise Invalid(
                    f"allowlist[{i}]", f"expected an address or network like '10.0.0.0/8', got {short(entry)}"
                ) from None
        return nets


def never_block(addr: IpAddress) -> str:
    """Why an address must never be blocked, or "" if it may be."""
    if addr.is_unspecified:
        return "unspecified"
    if addr.is_loopback:
        return "loopback"
    if addr.is_multicast:
        return "multicast"
    if addr.is_link_local:
        return "link-local"  # blocking fe80::/10 would break IPv6 neighbour discovery
    if isinstance(addr, ipaddress.IPv4Address) and addr == ipaddress.IPv4Address("255.255.255.255"):
        return "broadcast"
    return ""


class FirewallAction:
    """Add the alert's address to a blocklist set, with a timeout."""

    type = "firewall"
    slow = False

    def __init__(self, config: Config | None = None):
        self.config = config or Config()
        self._allow = self.config.allowlist_networks()

    @property
    def target(self) -> str:
        """The IPv4 set (what an outcome names before the address is known)."""
        return self.target_for(None)

    def target_for(self, addr: IpAddress | None) -> str:
        c = self.config
        v6 = isinstance(addr, ipaddress.IPv6Address)
        if c.backend == "nftables":
            return f"{c.family} {c.table} {c.set6 if v6 else c.set}"
        return c.ipset6 if v6 else c.ipset

    def addresses(self, alert: Mapping[str, Any]) -> list[Any]:
        return [alert.get(self.config.ip_field)]

    def argv(self, addr: IpAddress) -> list[str]:
        """The command for one already-validated address (canonical text only)."""
        c = self.config
        text = str(addr)
        v6 = isinstance(addr, ipaddress.IPv6Address)
        if c.backend == "nftables":
            timeout = f" timeout {c.timeout_s}s" if c.timeout_s else ""
            # nft parses the element itself: one argv item, never split, never a shell.
            return [c.nft_path, "add", "element", c.family, c.table, c.set6 if v6 else c.set, f"{{ {text}{timeout} }}"]
        argv = [c.ipset_path, "add", c.ipset6 if v6 else c.ipset, text]
        if c.timeout_s:
            argv += ["timeout", str(c.timeout_s)]
        return [*argv, "-exist"]

    def run(self, alert: Mapping[str, Any]) -> dict[str, Any]:
        c = self.config
        addr, why = parse_address(alert.get(c.ip_field) if isinstance(alert, Mapping) else None)
        if addr is None:
            return outcome(
                self.type,
                self.target,
                dry_run=c.dry_run,
                argv=None,
                result="skipped",
                reason=f"{why} (from {c.ip_field})",
            )
        target = self.target_for(addr)
        kind = never_block(addr)
        if kind:
            return outcome(
                self.type,
                target,
                dry_run=c.dry_run,
                argv=None,
                result="skipped",
                reason=f"refusing to block {kind} address {addr}",
                address=str(addr),
            )
        for net in self._allow:
            if addr.version == net.version and addr in net:
                return outcome(
                    self.type,
                    target,
                    dry_run=c.dry_run,
                    argv=None,
                    result="skipped",
                    reason=f"allowlisted by {net}",
                    address=str(addr),
                )
        argv = self.argv(addr)
        if c.dry_run:
            return outcome(
                self.type,
                target,
                dry_run=True,
                argv=argv,
                result="dry_run",
                reason=f"would block {addr}",
                address=str(addr),
            )
        tool = "nft" if c.backend == "nftables" else "ipset"
        result, reason, _ = run_command(argv, c.command_timeout_s, tool)
        if result == "ok":
            reason = f"blocked {addr}" + (f" for {c.timeout_s}s" if c.timeout_s else "")
        return outcome(self.type, target, dry_run=False, argv=argv, result=result, reason=reason, address=str(addr))


def build(config: Config, context: Any = None) -> FirewallAction:
    return FirewallAction(config)
