"""`type: firewall`: block the alert's address with an nftables or ipset set element."""

from __future__ import annotations

import ipaddress
import os
import shutil
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from ..contract.errors import ActionError
from ..contract.typed import Invalid, doc
from .base import ActionConfig, IpAddress, check_ident, check_program, outcome, parse_address, run_command, short


class Config(ActionConfig, tag="firewall", kw_only=True):
    """Add the alert's address to a blocklist set, with a timeout. Dry-run by default.

    The sets must exist before the agent adds elements. ``jenga-edge firewall
    init --config FILE`` (or ``ensure: true``, at start and on reload) creates
    them idempotently. For nftables, it creates the table (its own, ``jenga``
    by default), the sets ``blocklist`` (``ipv4_addr``) and ``blocklist6``
    (``ipv6_addr``) with ``flags timeout``, and ``input`` and ``forward`` chains
    that drop ``ip saddr @blocklist`` and ``ip6 saddr @blocklist6`` (only that
    table is touched; its two chains are flushed and refilled, so running it
    twice changes nothing). For ipset it creates ``jenga-block`` and
    ``jenga-block6`` (``hash:ip timeout 0``); the iptables rule that uses them is
    the gateway's firewall setup, or the sets block nothing.
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
    ensure: Annotated[
        bool, doc("create the table, sets and drop rules at start and on reload (see `jenga-edge firewall init`)")
    ] = False
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
        if self.backend == "nftables" and self.family not in _SADDR:
            raise Invalid(
                "family",
                f"expected one of {', '.join(_SADDR)} (a family that filters by address), got {short(self.family)}",
            )
        if not self.ip_field:
            raise Invalid("ip_field", "expected an alert key, got ''")
        check_program("nft_path", self.nft_path, absolute=False)
        check_program("ipset_path", self.ipset_path, absolute=False)
        self.allowlist_networks()  # raises on a bad entry

    def program_key(self) -> str:
        """The key of the program this backend runs."""
        return "nft_path" if self.backend == "nftables" else "ipset_path"

    def missing_program(self) -> str | None:
        """Why the live command cannot run on this machine (the tool is not there), or None."""
        prog = getattr(self, self.program_key())
        found = shutil.which(prog) if not os.path.isabs(prog) else os.access(prog, os.X_OK)
        return None if found else f"{prog!r} not found or not executable"

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


# nftables families whose tables can drop by source address, and the sets they use.
_SADDR = {"inet": ("ip", "ip6"), "ip": ("ip",), "ip6": ("ip6",)}


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

    @property
    def slow(self) -> bool:
        """A live command can hang: it runs behind the output stage; a dry run runs nothing."""
        return not self.config.dry_run

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

    def _source(self, alert: Mapping[str, Any]) -> tuple[Any, str]:
        """(the address to block, where it came from): the rule's `target` when it names
        one (its value in the alert's `target`), else the alert's `ip_field`."""
        target = alert.get("target") if isinstance(alert, Mapping) else None
        if isinstance(target, Mapping) and "field" in target:
            return target.get("value"), f"target {target['field']}"
        return (alert.get(self.config.ip_field) if isinstance(alert, Mapping) else None), self.config.ip_field

    def addresses(self, alert: Mapping[str, Any]) -> list[Any]:
        return [self._source(alert)[0]]

    @property
    def tool(self) -> str:
        """The tool's name in outcomes and errors."""
        return "nft" if self.config.backend == "nftables" else "ipset"

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

    def init_argvs(self) -> list[list[str]]:
        """The commands that create the sets `run` adds to, and the rules that use them.
        Each is idempotent: nft's `add` leaves what exists, and the table's own chains
        are flushed before their rules are added, so a second run changes nothing."""
        c = self.config
        if c.backend == "ipset":
            return [
                [c.ipset_path, "create", c.ipset, "hash:ip", "timeout", "0", "-exist"],
                [c.ipset_path, "create", c.ipset6, "hash:ip", "family", "inet6", "timeout", "0", "-exist"],
            ]
        nft, fam, table = c.nft_path, c.family, c.table
        sets = {"ip": (c.set, "ipv4_addr"), "ip6": (c.set6, "ipv6_addr")}
        argvs = [[nft, "add", "table", fam, table]]
        for proto in _SADDR[fam]:
            name, kind = sets[proto]
            argvs.append([nft, "add", "set", fam, table, name, f"{{ type {kind}; flags timeout; }}"])
        for hook in ("input", "forward"):
            # Before most filter chains (priority 0), so a blocked source is dropped early.
            argvs.append([nft, "add", "chain", fam, table, hook, f"{{ type filter hook {hook} priority -10; }}"])
            argvs.append([nft, "flush", "chain", fam, table, hook])
            for proto in _SADDR[fam]:
                argvs.append([nft, "add", "rule", fam, table, hook, proto, "saddr", f"@{sets[proto][0]}", "drop"])
        return argvs

    def init(self) -> list[dict[str, Any]]:
        """Run (or, dry-run, record) `init_argvs`; stops at the first failure. One outcome each."""
        c = self.config
        outs = []
        for argv in self.init_argvs():
            if c.dry_run:
                outs.append(
                    outcome(self.type, self.target, dry_run=True, argv=argv, result="dry_run", reason="would run")
                )
                continue
            result, reason, _ = run_command(argv, c.command_timeout_s, self.tool)
            outs.append(outcome(self.type, self.target, dry_run=False, argv=argv, result=result, reason=reason))
            if result != "ok":
                break
        return outs

    def run(self, alert: Mapping[str, Any]) -> dict[str, Any]:
        c = self.config
        value, origin = self._source(alert)
        addr, why = parse_address(value)
        if addr is None:
            return outcome(
                self.type, self.target, dry_run=c.dry_run, argv=None, result="skipped", reason=f"{why} (from {origin})"
            )

        def done(result: str, reason: str, argv: list[str] | None = None, dry_run: bool = c.dry_run) -> dict[str, Any]:
            return outcome(
                self.type,
                self.target_for(addr),
                dry_run=dry_run,
                argv=argv,
                result=result,
                reason=reason,
                address=str(addr),
            )

        kind = never_block(addr)
        if kind:
            return done("skipped", f"refusing to block {kind} address {addr}")
        for net in self._allow:
            if addr.version == net.version and addr in net:
                return done("skipped", f"allowlisted by {net}")
        argv = self.argv(addr)
        if c.dry_run:
            return done("dry_run", f"would block {addr}", argv)
        result, reason, _ = run_command(argv, c.command_timeout_s, self.tool)
        if result == "ok":
            reason = f"blocked {addr}" + (f" for {c.timeout_s}s" if c.timeout_s else "")
        return done(result, reason, argv, dry_run=False)


def check_live(name: str, config: Config) -> None:
    """A live (not dry-run) firewall action needs its tool on this machine: refused at
    `validate` and at start, not on the first alert."""
    if not config.dry_run:
        why = config.missing_program()
        if why:
            raise ActionError(
                f"actions.{name}.{config.program_key()}: {why}; install it, give its absolute path, "
                "or set dry_run: true"
            )


def ensure(name: str, action: FirewallAction) -> None:
    """`ensure: true`: create the sets and rules now (idempotent); a failure names the command."""
    if action.config.ensure:
        outs = action.init()
        if outs and outs[-1]["result"] == "failed":
            raise ActionError(f"actions.{name}: firewall init failed: {outs[-1]['reason']}")


def build(config: Config, context: Any = None) -> FirewallAction:
    return FirewallAction(config)
