"""What the agent does about an alert: block the source, run a command, notify.

An alert is a plain dict (timestamp, rule, priority, task, score, threshold,
src_ip, dest_ip, dest_port, fields). Every action takes one and returns an
*outcome* dict, which the agent appends to ``alert["actions"]``::

    {"type": "firewall", "target": "inet jenga blocklist", "dry_run": True,
     "argv": ["nft", "add", "element", ...], "result": "dry_run", "reason": "..."}

``result`` is one of ``ok``, ``failed``, ``skipped``, ``dry_run``, ``spooled``.
An action never raises because of what an alert holds: a bad value is a
``skipped`` outcome with the reason. Bad *settings* raise ConfigError when the
config is built, so a firmware config is rejected before the agent starts.

Alert values are untrusted (they come from the network). Nothing here goes
through a shell: commands run with ``shell=False`` and a fixed argv, and every
alert value that reaches an argv is parsed first (addresses with
``ipaddress.ip_address``, ports as integers, scores as floats, names against a
strict pattern) and written back in canonical form, never as the raw text.

Firewall and exec actions default to ``dry_run: true``: they record the exact
argv they would run until an operator turns that off.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import string
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Literal, Mapping, Union

from .contract.errors import ConfigError
from .contract.typed import bounded, build

if TYPE_CHECKING:   # delivery code (urllib.request, http.client, email) loads only with a webhook
    from .webhook import WebhookAction

IpAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

_IDENT = re.compile(r"[A-Za-z0-9_-]{1,32}")
_NAME_VALUE = re.compile(r"[A-Za-z0-9_.-]{1,128}")
_PORT_TEXT = re.compile(r"[0-9]{1,5}")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")   # RFC 9110 token
_MAX_REASON = 200

RESULTS = ("ok", "failed", "skipped", "dry_run", "spooled")


# --- helpers shared by the actions ---------------------------------------------------------

def _short(value: Any, limit: int = 60) -> str:
    """repr() of an untrusted value, cut so a hostile alert cannot flood the log."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _outcome(type_: str, target: str, *, dry_run: bool, argv: list[str] | None,
             result: str, reason: str, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type_, "target": target, "dry_run": dry_run,
                           "argv": list(argv) if argv is not None else None,
                           "result": result, "reason": reason}
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
        return None, f"invalid address: expected a string, got {type(value).__name__} {_short(value)}"
    if len(value) > 64:
        return None, f"invalid address: {_short(value)} is too long"
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        return None, f"invalid address: {_short(value)}"
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.scope_id is not None:
            return None, f"invalid address: {_short(value)} has a zone id"
        if addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
    return addr, ""


def _never_block(addr: IpAddress) -> str:
    """Why an address must never be blocked, or "" if it may be."""
    if addr.is_unspecified:
        return "unspecified"
    if addr.is_loopback:
        return "loopback"
    if addr.is_multicast:
        return "multicast"
    if addr.is_link_local:
        return "link-local"   # blocking fe80::/10 would break IPv6 neighbour discovery
    if isinstance(addr, ipaddress.IPv4Address) and addr == ipaddress.IPv4Address("255.255.255.255"):
        return "broadcast"
    return ""


def _first_line(data: bytes | str | None) -> str:
    if not data:
        return ""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    for line in text.splitlines():
        line = line.strip()
        if line:
            return line[:_MAX_REASON]
    return ""


def _run_command(argv: list[str], timeout_s: float, tool: str) -> tuple[str, str, int | None]:
    """Run argv without a shell; return (result, reason, exit status)."""
    import subprocess   # here, not at import: only agents that act pay for it
    try:
        proc = subprocess.run(argv, shell=False, timeout=timeout_s, capture_output=True,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return "failed", f"{tool} not found: {argv[0]}", None
    except PermissionError:
        return "failed", f"{tool} not executable: {argv[0]}", None
    except subprocess.TimeoutExpired:
        return "failed", f"{tool} timed out after {timeout_s:g}s", None
    except OSError as exc:
        return "failed", f"{tool} could not start: {exc}", None
    if proc.returncode != 0:
        detail = _first_line(proc.stderr) or _first_line(proc.stdout)
        reason = f"{tool} exited with status {proc.returncode}"
        return "failed", f"{reason}: {detail}" if detail else reason, proc.returncode
    return "ok", f"{tool} succeeded", 0


def _check_program(section: str, key: str, path: str, absolute: bool) -> None:
    if not isinstance(path, str) or not path or "\0" in path or path != path.strip():
        raise ConfigError(f"{section}.{key}: expected a program name or absolute path, got {_short(path)}")
    if absolute or "/" in path:
        if not os.path.isabs(path):
            raise ConfigError(f"{section}.{key}: expected an absolute path (the agent's working "
                              f"directory is not fixed), got {path!r}")


def _check_ident(section: str, key: str, value: str) -> None:
    if not isinstance(value, str) or not _IDENT.fullmatch(value):
        raise ConfigError(f"{section}.{key}: expected a name of 1-32 letters, digits, '_' or '-', "
                          f"got {_short(value)}")


# --- firewall ------------------------------------------------------------------------------

@dataclass
class FirewallConfig:
    """Block the alert's address with an nftables or ipset set element.

    The set must already exist (the agent only adds elements): for nftables,
    e.g. ``nft add set inet jenga blocklist '{ type ipv4_addr; flags timeout; }'``
    and a rule that drops ``ip saddr @blocklist`` (same for ``blocklist6`` with
    ``ipv6_addr``/``ip6 saddr``). For ipset, ``ipset create jenga-block hash:ip
    timeout 0`` (and ``family inet6`` for ``jenga-block6``); creating the
    iptables rule that references the set is out of scope and must be done by
    the gateway's firewall setup, or the set blocks nothing.
    """

    backend: Literal["nftables", "ipset"] = "nftables"  # which tool adds the element
    family: str = "inet"             # nftables table family (inet, ip, ip6, ...)
    table: str = "jenga"             # nftables table holding the sets
    set: str = "blocklist"           # nftables set for IPv4 addresses
    set6: str = "blocklist6"         # nftables set for IPv6 addresses
    ipset: str = "jenga-block"       # ipset set for IPv4 addresses (backend ipset)
    ipset6: str = "jenga-block6"     # ipset set for IPv6 addresses (backend ipset)
    ip_field: str = "src_ip"         # which alert key holds the address to block
    # How long an element stays, in seconds; 0 adds it without a timeout (the set's
    # default applies: permanent unless the set has one). ipset's maximum is 2147483.
    timeout_s: int = bounded(3600, lo=0, hi=2147483)
    dry_run: bool = True             # record the argv, run nothing (the safe default)
    nft_path: str = "nft"            # program name (looked up in PATH) or absolute path
    ipset_path: str = "ipset"        # likewise for ipset
    command_timeout_s: float = bounded(5.0, lo=0.1, hi=300.0)  # kill the command after this
    # Addresses and networks never blocked, e.g. ["10.0.0.0/8", "192.0.2.1"]: the
    # gateway itself, management hosts, upstream resolvers.
    allowlist: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for key in ("family", "table", "set", "set6", "ipset", "ipset6"):
            _check_ident("firewall", key, getattr(self, key))
        if self.backend not in ("nftables", "ipset"):
            raise ConfigError(f"firewall.backend: expected 'nftables' or 'ipset', got {_short(self.backend)}")
        if not isinstance(self.ip_field, str) or not self.ip_field:
            raise ConfigError(f"firewall.ip_field: expected an alert key, got {_short(self.ip_field)}")
        _check_program("firewall", "nft_path", self.nft_path, absolute=False)
        _check_program("firewall", "ipset_path", self.ipset_path, absolute=False)
        self.allowlist_networks()   # raises on a bad entry

    def allowlist_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        nets = []
        for i, entry in enumerate(self.allowlist):
            try:
                if not isinstance(entry, str):
                    raise ValueError
                nets.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                raise ConfigError(f"firewall.allowlist[{i}]: expected an address or network like "
                                  f"'10.0.0.0/8', got {_short(entry)}") from None
        return nets


class FirewallAction:
    """Add the alert's address to a blocklist set, with a timeout."""

    type = "firewall"

    def __init__(self, config: FirewallConfig | None = None):
        self.config = config or FirewallConfig()
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

    def argv(self, addr: IpAddress) -> list[str]:
        """The command for one already-validated address (canonical text only)."""
        c = self.config
        text = str(addr)
        v6 = isinstance(addr, ipaddress.IPv6Address)
        if c.backend == "nftables":
            timeout = f" timeout {c.timeout_s}s" if c.timeout_s else ""
            # nft parses the element itself: one argv item, never split, never a shell.
            return [c.nft_path, "add", "element", c.family, c.table, c.set6 if v6 else c.set,
                    f"{{ {text}{timeout} }}"]
        argv = [c.ipset_path, "add", c.ipset6 if v6 else c.ipset, text]
        if c.timeout_s:
            argv += ["timeout", str(c.timeout_s)]
        return argv + ["-exist"]

    def run(self, alert: Mapping[str, Any]) -> dict[str, Any]:
        c = self.config
        addr, why = parse_address(alert.get(c.ip_field) if isinstance(alert, Mapping) else None)
        if addr is None:
            return _outcome(self.type, self.target, dry_run=c.dry_run, argv=None,
                            result="skipped", reason=f"{why} (from {c.ip_field})")
        target = self.target_for(addr)
        kind = _never_block(addr)
        if kind:
            return _outcome(self.type, target, dry_run=c.dry_run, argv=None, result="skipped",
                            reason=f"refusing to block {kind} address {addr}", address=str(addr))
        for net in self._allow:
            if addr.version == net.version and addr in net:
                return _outcome(self.type, target, dry_run=c.dry_run, argv=None, result="skipped",
                                reason=f"allowlisted by {net}", address=str(addr))
        argv = self.argv(addr)
        if c.dry_run:
            return _outcome(self.type, target, dry_run=True, argv=argv, result="dry_run",
                            reason=f"would block {addr}", address=str(addr))
        tool = "nft" if c.backend == "nftables" else "ipset"
        result, reason, _ = _run_command(argv, c.command_timeout_s, tool)
        if result == "ok":
            reason = f"blocked {addr}" + (f" for {c.timeout_s}s" if c.timeout_s else "")
        return _outcome(self.type, target, dry_run=False, argv=argv, result=result, reason=reason,
                        address=str(addr))

    __call__ = run


# --- exec ----------------------------------------------------------------------------------

#: Placeholders an exec template may use, and how each value is checked.
EXEC_PLACEHOLDERS = ("src_ip", "dest_ip", "dest_port", "task", "rule", "priority", "score", "threshold")


def _render_value(name: str, value: Any) -> tuple[str | None, str]:
    """Validate one alert value for a placeholder; return (text, "") or (None, why)."""
    if value is None:
        return None, f"missing value for {{{name}}}"
    if name in ("src_ip", "dest_ip"):
        addr, why = parse_address(value)
        return (str(addr), "") if addr is not None else (None, f"{{{name}}}: {why}")
    if name == "dest_port":
        port: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            port = value
        elif isinstance(value, str) and _PORT_TEXT.fullmatch(value):
            port = int(value)
        if port is None or not 0 <= port <= 65535:
            return None, f"{{{name}}}: invalid port {_short(value)}"
        return str(port), ""
    if name in ("score", "threshold"):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return None, f"{{{name}}}: expected a finite number, got {_short(value)}"
        return repr(float(value)), ""
    # task, rule, priority: names. A leading '-' could be read as an option.
    if not isinstance(value, str) or not _NAME_VALUE.fullmatch(value) or value.startswith("-"):
        return None, f"{{{name}}}: invalid name {_short(value)}"
    return value, ""


def parse_template(argv: list[str], section: str = "exec") -> list[list[tuple[str, str | None]]]:
    """Split each argv item into (literal text, placeholder name or None) pieces.

    ``{{`` and ``}}`` are literal braces. Only bare names from EXEC_PLACEHOLDERS
    are allowed: no positional ``{}``, attribute/index access, conversions or
    format specs. Raises ConfigError naming the offending item.
    """
    parsed = []
    fmt = string.Formatter()
    for i, item in enumerate(argv):
        if not isinstance(item, str):
            raise ConfigError(f"{section}.argv[{i}]: expected a string, got {_short(item)}")
        if "\0" in item:
            raise ConfigError(f"{section}.argv[{i}]: NUL character in {_short(item)}")
        try:
            pieces = list(fmt.parse(item))
        except ValueError as exc:
            raise ConfigError(f"{section}.argv[{i}]: bad template {item!r}: {exc} "
                              f"(write literal braces as '{{{{' and '}}}}')") from None
        out: list[tuple[str, str | None]] = []
        for literal, name, spec, conv in pieces:
            if name is None:
                out.append((literal, None))
                continue
            if name not in EXEC_PLACEHOLDERS:
                raise ConfigError(f"{section}.argv[{i}]: unknown placeholder {{{name}}} in {item!r}; "
                                  f"allowed: {', '.join(EXEC_PLACEHOLDERS)}")
            if spec or conv:
                raise ConfigError(f"{section}.argv[{i}]: placeholder {{{name}}} in {item!r} may not "
                                  f"have a conversion or format spec")
            out.append((literal, name))
        parsed.append(out)
    return parsed


@dataclass
class ExecConfig:
    """Run a local program for an alert, with alert values substituted into argv.

    ``argv`` is a template, e.g. ``["/usr/local/bin/quarantine", "--ip", "{src_ip}",
    "--score={score}"]``: a placeholder is a whole item or part of one, and each
    item stays exactly one argument (no shell, no word splitting). Each value is
    validated first: addresses parsed and written canonically, ``dest_port`` an
    integer 0-65535, ``score``/``threshold`` finite numbers, ``task``/``rule``/
    ``priority`` names of ``[A-Za-z0-9_.-]`` not starting with '-'. An alert whose
    value fails is skipped, and the program is not run.
    """

    argv: list[str] = bounded(nonempty=True)  # the template; argv[0] an absolute path, no placeholder
    timeout_s: float = bounded(30.0, lo=0.1, hi=3600.0)  # kill the program after this
    dry_run: bool = True             # record the argv, run nothing (the safe default)

    def __post_init__(self) -> None:
        if not isinstance(self.argv, list) or not self.argv:
            raise ConfigError("exec.argv: expected a non-empty list like ['/usr/local/bin/tool', '{src_ip}']")
        template = parse_template(self.argv)
        if any(name is not None for _, name in template[0]):
            raise ConfigError(f"exec.argv[0]: the program may not contain a placeholder, got {self.argv[0]!r}")
        _check_program("exec", "argv[0]", self.argv[0], absolute=True)


class ExecAction:
    """Run the configured program with the alert's validated values."""

    type = "exec"

    def __init__(self, config: ExecConfig):
        self.config = config
        self._template = parse_template(config.argv)
        self.placeholders = sorted({n for item in self._template for _, n in item if n})

    @property
    def target(self) -> str:
        return self.config.argv[0]

    def render(self, alert: Mapping[str, Any]) -> tuple[list[str] | None, str]:
        """The argv for an alert, or (None, why) if a value fails validation."""
        values: dict[str, str] = {}
        for name in self.placeholders:
            text, why = _render_value(name, alert.get(name) if isinstance(alert, Mapping) else None)
            if text is None:
                return None, why
            values[name] = text
        argv = ["".join(lit + (values[n] if n else "") for lit, n in item) for item in self._template]
        return argv, ""

    def run(self, alert: Mapping[str, Any]) -> dict[str, Any]:
        c = self.config
        target = c.argv[0]
        argv, why = self.render(alert)
        if argv is None:
            return _outcome(self.type, target, dry_run=c.dry_run, argv=None, result="skipped", reason=why)
        if c.dry_run:
            return _outcome(self.type, target, dry_run=True, argv=argv, result="dry_run",
                            reason=f"would run {os.path.basename(target)}")
        tool = os.path.basename(target) or target
        result, reason, status = _run_command(argv, c.timeout_s, tool)
        return _outcome(self.type, target, dry_run=False, argv=argv, result=result, reason=reason,
                        exit_status=status)

    __call__ = run


# --- webhook -------------------------------------------------------------------------------

def _check_url(url: str) -> None:
    if not isinstance(url, str) or not url or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise ConfigError(f"webhook.url: expected an http(s) URL without spaces, got {_short(url)}")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ConfigError(f"webhook.url: expected an http:// or https:// URL, got scheme "
                          f"{parts.scheme or '(none)'!r} in {_short(url)}")
    try:
        host = parts.hostname
        parts.port   # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(f"webhook.url: bad port in {_short(url)}") from None
    if not host:
        raise ConfigError(f"webhook.url: expected a host in {_short(url)}")


def _redact(url: str) -> str:
    """scheme://host[:port]/path: no credentials or query string in outcomes and logs."""
    p = urllib.parse.urlsplit(url)
    host = p.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if p.port:
        host += f":{p.port}"
    return urllib.parse.urlunsplit((p.scheme, host, p.path, "", ""))


@dataclass
class WebhookConfig:
    """POST each alert as JSON; spool it to disk when the receiver is unreachable.

    A delivery is tried ``1 + max_retries`` times, sleeping ``backoff_base_s``,
    then twice that, ... capped at ``backoff_max_s`` between tries; 408, 429,
    5xx and connection errors are retried, other 4xx are not. Redirects are not
    followed. An alert still undelivered is appended to
    ``<spool_dir>/<spool_name>.jsonl`` (one JSON document a line, fsynced) and
    ``retry_spool()`` sends those later. Past ``max_spool_bytes`` new failures
    are dropped (outcome "failed", reason "spool full").
    """

    url: str                         # http:// or https:// receiver (required)
    timeout_s: float = bounded(5.0, lo=0.1, hi=120.0)     # per try: connect + response
    max_retries: int = bounded(3, lo=0, hi=10)            # extra tries after the first
    backoff_base_s: float = bounded(0.5, lo=0.0, hi=60.0)  # sleep before the first retry
    backoff_max_s: float = bounded(8.0, lo=0.0, hi=600.0)  # cap on any one sleep
    headers: dict[str, str] = field(default_factory=dict)  # extra headers, e.g. Authorization
    spool_dir: str = "/var/spool/jenga-edge"               # created (mode 0700) when first needed
    spool_name: str = "webhook"                            # file name stem inside spool_dir
    max_spool_bytes: int = bounded(16 * 1024 * 1024, lo=1024)  # spool size bound

    def __post_init__(self) -> None:
        _check_url(self.url)
        _check_ident("webhook", "spool_name", self.spool_name)
        if not isinstance(self.spool_dir, str) or not self.spool_dir or "\0" in self.spool_dir:
            raise ConfigError(f"webhook.spool_dir: expected a directory path, got {_short(self.spool_dir)}")
        for name, value in self.headers.items():
            if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
                raise ConfigError(f"webhook.headers: invalid header name {_short(name)}")
            if not isinstance(value, str) or any(ch in value for ch in "\r\n\0"):
                raise ConfigError(f"webhook.headers.{name}: value must be a single-line string")


# --- rate limiting -------------------------------------------------------------------------

@dataclass
class RateLimitConfig:
    """At most `max_actions` actions in any `per_seconds` window, with bursts up to it."""

    max_actions: int = bounded(10, lo=1)
    per_seconds: float = bounded(60.0, lo=0.001)


class RateLimiter:
    """Token bucket: holds up to `max_actions` tokens, refilled at max_actions/per_seconds.

    Thread-safe. `clock` is any monotonic seconds function (tests pass a fake one).
    """

    def __init__(self, max_actions: int, per_seconds: float,
                 clock: Callable[[], float] = time.monotonic):
        if isinstance(max_actions, bool) or not isinstance(max_actions, int) or max_actions < 1:
            raise ConfigError(f"rate_limit.max_actions: expected an integer >= 1, got {_short(max_actions)}")
        if (isinstance(per_seconds, bool) or not isinstance(per_seconds, (int, float))
                or not math.isfinite(per_seconds) or per_seconds <= 0):
            raise ConfigError(f"rate_limit.per_seconds: expected a number > 0, got {_short(per_seconds)}")
        self.capacity = float(max_actions)
        self.rate = max_actions / float(per_seconds)   # tokens per second
        self._clock = clock
        self._tokens = self.capacity
        self._last = clock()
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, config: RateLimitConfig, clock: Callable[[], float] = time.monotonic) -> "RateLimiter":
        return cls(config.max_actions, config.per_seconds, clock=clock)

    def _refill(self) -> None:
        now = self._clock()
        elapsed = now - self._last
        if elapsed > 0:   # a clock that steps back refills nothing
            self._tokens = min(self.capacity, self._tokens + elapsed * self.rate)
        self._last = now

    def allow(self, cost: float = 1.0) -> bool:
        """Take `cost` tokens if there are that many; False (and take none) otherwise."""
        with self._lock:
            self._refill()
            if self._tokens + 1e-9 >= cost:
                self._tokens = max(0.0, self._tokens - cost)
                return True
            return False

    def retry_after(self, cost: float = 1.0) -> float:
        """Seconds until `cost` tokens will be there (0 if they are now)."""
        with self._lock:
            self._refill()
            missing = cost - self._tokens
            return 0.0 if missing <= 1e-9 else missing / self.rate

    @property
    def tokens(self) -> float:
        with self._lock:
            self._refill()
            return self._tokens


# --- factory and runner --------------------------------------------------------------------

Action = Union[FirewallAction, ExecAction, "WebhookAction"]
ActionConfig = Union[FirewallConfig, ExecConfig, WebhookConfig]


def _webhook_action(config: WebhookConfig, **kwargs: Any) -> "WebhookAction":
    """Build a WebhookAction, importing `webhook` (urllib.request, http.client) only now."""
    from .webhook import WebhookAction
    return WebhookAction(config, **kwargs)


# kind -> (config class, action factory). The factory is the action class itself,
# except for webhook: a loader, so that an agent without a webhook never imports
# urllib.request / http.client (and the email package they pull in).
ACTION_TYPES: dict[str, tuple[type, Callable[..., Any]]] = {
    "firewall": (FirewallConfig, FirewallAction),
    "exec": (ExecConfig, ExecAction),
    "webhook": (WebhookConfig, _webhook_action),
}


def _kind_of(cfg: Any) -> str | None:
    for kind, (cfg_cls, _) in ACTION_TYPES.items():
        if isinstance(cfg, cfg_cls):
            return kind
    return None


def build_actions(cfgs: Mapping[str, Any] | Iterable[ActionConfig] | None,
                  source: str = "config", path: str = "actions") -> dict[str, Action]:
    """Build named actions, in order.

    `cfgs` is either a mapping of action name to a config object or to raw data
    (``{"block": {"type": "firewall", "dry_run": False}}``; the type defaults to
    the name when that is firewall/exec/webhook, e.g. ``{"webhook": {"url": ...}}``),
    or a list of config objects, each named after its type.
    """
    if cfgs is None:
        return {}
    items: list[tuple[str, Any]]
    if isinstance(cfgs, Mapping):
        items = list(cfgs.items())
    else:
        items = []
        for i, cfg in enumerate(cfgs):
            kind = _kind_of(cfg)
            if kind is None:
                raise ConfigError(f"{source}: {path}[{i}]: expected a FirewallConfig, ExecConfig or "
                                  f"WebhookConfig, got {type(cfg).__name__}")
            if any(name == kind for name, _ in items):
                raise ConfigError(f"{source}: {path}[{i}]: a second {kind} action; use a mapping "
                                  f"to give each its own name")
            items.append((kind, cfg))
    actions: dict[str, Action] = {}
    for name, cfg in items:
        where = f"{path}.{name}" if path else str(name)
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{source}: {path}: action names must be non-empty strings, got {_short(name)}")
        kind = _kind_of(cfg)
        if kind is None:
            if not isinstance(cfg, Mapping):
                raise ConfigError(f"{source}: {where}: expected a mapping or an action config, "
                                  f"got {type(cfg).__name__}")
            data = dict(cfg)
            kind = data.pop("type", name if name in ACTION_TYPES else None)
            if kind not in ACTION_TYPES:
                raise ConfigError(f"{source}: {where}.type: expected one of "
                                  f"{', '.join(ACTION_TYPES)}, got {_short(kind)}")
            try:
                cfg = build(ACTION_TYPES[kind][0], data, path=where, source=source)
            except ConfigError as exc:
                msg = str(exc)
                if not msg.startswith(source):   # raised by __post_init__, without a location
                    msg = f"{source}: {where}: {msg}"
                raise ConfigError(msg) from None
        actions[name] = ACTION_TYPES[kind][1](cfg)
    return actions


def run_actions(alert: dict[str, Any], actions: Mapping[str, Action],
                limiter: RateLimiter | Mapping[str, RateLimiter] | None = None) -> list[dict[str, Any]]:
    """Run each action on the alert, appending outcomes to ``alert["actions"]``.

    `limiter` is one RateLimiter for all actions or one per action name; an
    action over its limit is not run (outcome "skipped", reason "rate limited").
    An action that raises is recorded as "failed" instead of stopping the agent.
    Returns the outcomes of this call.
    """
    outcomes = alert.setdefault("actions", [])
    new = []
    for name, action in actions.items():
        lim = limiter.get(name) if isinstance(limiter, Mapping) else limiter
        dry_run = bool(getattr(action.config, "dry_run", False))
        if lim is not None and not lim.allow():
            out = _outcome(action.type, action.target, dry_run=dry_run, argv=None, result="skipped",
                           reason=f"rate limited (next slot in {lim.retry_after():.1f}s)")
        else:
            try:
                out = action.run(alert)
            except Exception as exc:  # noqa: BLE001 - one broken action must not stop the rest
                out = _outcome(action.type, action.target, dry_run=dry_run, argv=None, result="failed",
                               reason=f"internal error: {type(exc).__name__}: {exc}")
        out["name"] = name
        outcomes.append(out)
        new.append(out)
    return new


__all__ = [
    "ACTION_TYPES", "EXEC_PLACEHOLDERS", "RESULTS", "ExecAction", "ExecConfig", "FirewallAction",
    "FirewallConfig", "RateLimitConfig", "RateLimiter", "WebhookAction", "WebhookConfig",
    "build_actions", "parse_address", "parse_template", "run_actions",
]

# Moved to `webhook`; still importable from here, loaded on first access (PEP 562).
_WEBHOOK_NAMES = frozenset({"WebhookAction", "_NoRedirect", "_json_default", "_RETRY_STATUS"})


def __getattr__(name: str) -> Any:
    if name in _WEBHOOK_NAMES:
        from . import webhook
        return getattr(webhook, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
