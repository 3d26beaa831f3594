"""The lab never touches the host's network: checked before a run, and compared after.

Before: root is needed (namespaces); the lab's subnet, the spoofed sources and the
tunnel subnet must not overlap any address or route of the host (so even a
mistake could not shadow a real network); no namespace of the lab's prefix may
exist. After: the host's interfaces, addresses, routes, namespaces (other than
the lab's own, which must all be gone) and nft ruleset must be what they were.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from typing import Any

from .errors import LabError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
LAB_NETNS = re.compile(r"^jl[0-9a-f]{4}-")  # every lab run's namespaces (topology.py)


def _run(argv: list[str]) -> str:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    if out.returncode != 0:
        raise LabError(f"{' '.join(argv)} failed ({out.returncode}): {out.stderr.strip()[:200]}")
    return out.stdout


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab builds network namespaces: run it as root (or in a container where you are root)")


def host_networks() -> list[Network]:
    """Every address (as its network) and every non-default route of the host."""
    nets: list[Network] = []
    for link in json.loads(_run(["ip", "-j", "addr", "show"]) or "[]"):
        for a in link.get("addr_info", []):
            nets.append(ipaddress.ip_network(f"{a['local']}/{a['prefixlen']}", strict=False))
    for family in ("-4", "-6"):
        for r in json.loads(_run(["ip", "-j", family, "route", "show", "table", "all"]) or "[]"):
            dst = r.get("dst", "default")
            if dst in ("default", "0.0.0.0/0", "::/0") or r.get("type") in ("broadcast", "local", "multicast"):
                continue
            try:
                nets.append(
                    ipaddress.ip_network(dst if "/" in dst else f"{dst}/{32 if ':' not in dst else 128}", strict=False)
                )
            except ValueError:
                continue
    return nets


def check_no_overlap(lab_nets: Iterable[tuple[str, ipaddress.IPv4Network]], host: list[Network]) -> None:
    for what, net in lab_nets:
        for h in host:
            if h.version == net.version and net.overlaps(h):
                raise LabError(f"{what} {net} overlaps the host's {h}: choose another (the lab never shares a "
                               "network with the host)")  # fmt: skip


def netns_names() -> list[str]:
    return [line.split()[0] for line in _run(["ip", "netns", "list"]).splitlines() if line.strip()]


def host_state(own_prefix: str) -> dict[str, Any]:
    """What the lab must leave as it found it; namespaces of its own prefix are left out."""
    links = json.loads(_run(["ip", "-j", "link", "show"]) or "[]")
    state: dict[str, Any] = {
        "links": sorted((lk["ifname"], lk.get("address", ""), "UP" in lk.get("flags", [])) for lk in links),
        "addr_text": sorted(
            f"{lk['ifname']} {a['local']}/{a['prefixlen']}"
            for lk in json.loads(_run(["ip", "-j", "addr"]) or "[]")
            for a in lk.get("addr_info", [])
        ),
        "routes": sorted(_run(["ip", "route", "show", "table", "all"]).splitlines()),
        "routes6": sorted(_run(["ip", "-6", "route", "show", "table", "all"]).splitlines()),
        # Another lab run's namespaces may come and go meanwhile; this run's own are checked apart.
        "netns": sorted(n for n in netns_names() if not LAB_NETNS.match(n)),
        "own_netns_left": sorted(n for n in netns_names() if n.startswith(own_prefix)),
    }
    if shutil.which("nft"):
        ruleset = subprocess.run(["nft", "list", "ruleset"], capture_output=True, timeout=30, check=False)
        state["nft_sha256"] = hashlib.sha256(ruleset.stdout).hexdigest() if ruleset.returncode == 0 else "unreadable"
    return state


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    return [f"{k}: before {before.get(k)!r}, after {after.get(k)!r}" for k in before if before.get(k) != after.get(k)]
