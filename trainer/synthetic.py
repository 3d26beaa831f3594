"""Seeded generators of realistic tabular security datasets.

Three use cases are covered; each generator draws every row from a named
*profile* (a kind of traffic, transaction or host state), so the data has the
multi-modal structure of real telemetry instead of two clean Gaussian blobs.
Everything comes from one ``np.random.default_rng(seed)`` and values are rounded,
so the same seed always writes byte-identical files.

network (label "normal"/"malicious", ~30% malicious)
    Normal flows are a mix of web (80/443 tcp), DNS (53 udp), SSH (22 tcp),
    assorted services and ICMP pings. Attacks split into DDoS (floods of small
    udp/icmp/SYN packets, many requests, short flows), port scans (tcp probes of
    uncommon ports, tiny bytes, very short flows) and exfiltration (long flows to
    443/53/22 that send far more than they receive). Overlap comes from three
    places: ~10% of attacks are "low-and-slow" (a normal web/SSH flow with only a
    mild tilt: a few more requests, an odd port, a somewhat upload-heavy ratio);
    ~5% of normal flows are flash crowds or backups that look like DDoS or
    exfiltration; and every numeric field carries multiplicative lognormal noise.
    Attackers mostly come from 203.0.113.0/24 and 198.51.100.0/24, but a quarter
    use internal or benign-looking addresses (compromised hosts, proxies).
    About 1% of rows lack ``duration`` so that imputation gets exercised.

fraud (label 0/1, ~5% fraud)
    Legitimate purchases follow category-specific amounts, daytime hours, short
    distances from home and long gaps between transactions. Fraud leans towards
    electronics, gambling, online retail and travel, larger amounts, night hours,
    far-away or international use and rapid bursts. Overlap: a fifth of fraud is
    card testing (tiny amounts, near home), some is card-not-present fraud at
    home-like distances, legitimate travellers buy abroad, far away, at odd
    hours, and honest shopping sprees produce fraud-like short gaps.

aiops (label "normal"/"incident", ~8% incidents)
    Each host ("web-03", "db-01", ...) has its own baseline load, so the same
    cpu value is routine on one host and alarming on another. Incidents are CPU
    saturation (cpu and response time spike together), error storms (error rate
    jumps, latency follows) and memory leaks (memory near 100%, swapping shows as
    disk I/O, latency creeps up). Overlap: busy-but-healthy periods with high
    cpu, ~15% of incidents only mildly elevated, and per-row measurement noise.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from jenga_edge.contract.errors import DataError

Rows = list[dict]
Columns = dict[str, np.ndarray]

NETWORK_FIELDS = (
    "packet_size",
    "port",
    "protocol",
    "duration",
    "request_count",
    "bytes_sent",
    "bytes_received",
    "src_ip",
    "dst_ip",
    "label",
    "attack_type",
)
FRAUD_FIELDS = (
    "transaction_amount",
    "merchant_category",
    "distance_from_home",
    "time_since_last_transaction",
    "transaction_hour",
    "is_international",
    "label",
)
AIOPS_FIELDS = (
    "cpu_usage",
    "memory_usage",
    "disk_io",
    "network_throughput",
    "error_rate",
    "response_time",
    "host",
    "label",
)


# --------------------------------------------------------------------------- #
# Shared helpers
# --------------------------------------------------------------------------- #


def _assign(rng: np.random.Generator, n: int, shares: dict[str, float]) -> np.ndarray:
    """Draw one profile name per row with the given shares (normalised)."""
    names = list(shares)
    p = np.array([shares[k] for k in names], dtype=float)
    return np.array(names, dtype=object)[rng.choice(len(names), size=n, p=p / p.sum())]


def _lognormal(rng: np.random.Generator, median: float, sigma: float, k: int) -> np.ndarray:
    # Parametrised by the median because that is what one reads off a dashboard.
    return rng.lognormal(np.log(median), sigma, k)


def _jitter(rng: np.random.Generator, values: np.ndarray, sigma: float) -> np.ndarray:
    """Multiplicative noise: sensors and flow exporters err in relative terms."""
    return values * rng.lognormal(0.0, sigma, len(values))


def _fill(columns: Columns, mask: np.ndarray, part: Columns) -> None:
    for name, values in part.items():
        columns[name][mask] = values


def _empty_columns(n: int, numeric: tuple[str, ...], text: tuple[str, ...]) -> Columns:
    cols: Columns = {name: np.zeros(n) for name in numeric}
    cols.update({name: np.empty(n, dtype=object) for name in text})
    return cols


# --------------------------------------------------------------------------- #
# network
# --------------------------------------------------------------------------- #

_NORMAL_SHARES = {
    "web": 0.55,
    "dns": 0.20,
    "ssh": 0.08,
    "service": 0.09,
    "ping": 0.03,
    "flash_crowd": 0.03,
    "backup": 0.02,
}
_ATTACK_SHARES = {"ddos": 0.40, "port_scan": 0.30, "exfiltration": 0.30}
_LOW_AND_SLOW = 0.10
_MALICIOUS_SHARE = 0.30

_SERVICE_PORTS = np.array([25, 123, 587, 993, 3306, 3389, 5432, 8080, 8443, 9200])
_SERVICE_UDP_PORTS = {123}

# name -> (first octets, how many host octets are random)
_IP_POOLS = {
    "lan": ("10", 3),
    "servers": ("10.0", 2),
    "wifi": ("192.168", 2),
    "vpn": ("172.16", 2),
    "internet": ("192.0.2", 1),
    "attacker_a": ("203.0.113", 1),
    "attacker_b": ("198.51.100", 1),
}


def _flows(packet_size, port, protocol, duration, request_count, sent, received) -> Columns:
    return {
        "packet_size": np.asarray(packet_size, dtype=float),
        "port": np.asarray(port, dtype=float),
        "protocol": np.asarray(protocol, dtype=object),
        "duration": np.asarray(duration, dtype=float),
        "request_count": np.asarray(request_count, dtype=float),
        "bytes_sent": np.asarray(sent, dtype=float),
        "bytes_received": np.asarray(received, dtype=float),
    }


def _net_web(rng, k):
    return _flows(
        rng.normal(750, 300, k),
        rng.choice([80, 443], k, p=[0.25, 0.75]),
        np.full(k, "tcp"),
        _lognormal(rng, 2.5, 1.0, k),
        rng.poisson(_lognormal(rng, 12, 0.7, k)) + 1,
        _lognormal(rng, 1_500, 1.0, k),
        _lognormal(rng, 25_000, 1.3, k),  # downloads dominate browsing
    )


def _net_dns(rng, k):
    return _flows(
        rng.normal(110, 40, k),
        np.full(k, 53),
        np.full(k, "udp"),
        _lognormal(rng, 0.03, 0.7, k),
        rng.integers(1, 4, k),
        _lognormal(rng, 75, 0.3, k),
        _lognormal(rng, 220, 0.5, k),
    )


def _net_ssh(rng, k):
    return _flows(
        rng.normal(400, 200, k),
        np.full(k, 22),
        np.full(k, "tcp"),
        _lognormal(rng, 60, 1.2, k),
        rng.poisson(_lognormal(rng, 20, 0.8, k)) + 1,
        _lognormal(rng, 4_000, 1.2, k),
        _lognormal(rng, 9_000, 1.2, k),
    )


def _net_service(rng, k):
    # Mail, NTP, databases, RDP, plus client-side ephemeral ports.
    ephemeral = rng.integers(32768, 61000, k)
    port = np.where(rng.random(k) < 0.75, rng.choice(_SERVICE_PORTS, k), ephemeral)
    protocol = np.where(np.isin(port, list(_SERVICE_UDP_PORTS)), "udp", "tcp")
    return _flows(
        rng.normal(600, 350, k),
        port,
        protocol,
        _lognormal(rng, 3, 1.3, k),
        rng.poisson(_lognormal(rng, 8, 0.9, k)) + 1,
        _lognormal(rng, 3_000, 1.4, k),
        _lognormal(rng, 8_000, 1.4, k),
    )


def _net_ping(rng, k):
    return _flows(
        rng.normal(84, 10, k),
        np.zeros(k),
        np.full(k, "icmp"),
        _lognormal(rng, 1.0, 0.8, k),
        rng.integers(1, 6, k),
        _lognormal(rng, 300, 0.4, k),
        _lognormal(rng, 300, 0.4, k),
    )


def _net_flash_crowd(rng, k):
    # A product launch or cache flush: benign, but request counts look like a flood.
    return _flows(
        rng.normal(450, 200, k),
        rng.choice([80, 443], k),
        np.full(k, "tcp"),
        _lognormal(rng, 1.5, 1.0, k),
        _lognormal(rng, 250, 0.8, k),
        _lognormal(rng, 30_000, 1.0, k),
        _lognormal(rng, 400_000, 1.0, k),
    )


def _net_backup(rng, k):
    # Nightly off-site backups: long, upload-heavy flows, the twin of exfiltration.
    return _flows(
        rng.normal(1300, 150, k),
        rng.choice([22, 443], k),
        np.full(k, "tcp"),
        _lognormal(rng, 600, 0.9, k),
        rng.poisson(_lognormal(rng, 25, 0.8, k)) + 1,
        _lognormal(rng, 5e6, 1.2, k),
        _lognormal(rng, 60_000, 1.0, k),
    )


def _net_ddos(rng, k):
    protocol = rng.choice(["udp", "icmp", "tcp"], k, p=[0.5, 0.25, 0.25])
    port = np.select(
        [protocol == "udp", protocol == "icmp"],
        [rng.choice([53, 123, 443], k), np.zeros(k)],
        rng.choice([80, 443], k),
    )
    requests = _lognormal(rng, 800, 0.9, k)
    packet = rng.normal(90, 30, k)
    return _flows(
        packet,
        port,
        protocol,
        _lognormal(rng, 0.3, 1.0, k),
        requests,
        requests * packet * rng.uniform(0.6, 1.0, k),  # floods are mostly payload-free repeats
        _lognormal(rng, 150, 1.2, k),
    )


def _net_port_scan(rng, k):
    port = rng.integers(1, 65536, k)
    return _flows(
        rng.normal(58, 8, k),
        port,
        rng.choice(["tcp", "udp"], k, p=[0.9, 0.1]),
        _lognormal(rng, 0.005, 1.0, k),
        _lognormal(rng, 60, 1.0, k),
        _lognormal(rng, 60, 0.4, k),
        _lognormal(rng, 40, 0.8, k),
    )


def _net_exfiltration(rng, k):
    port = rng.choice([443, 53, 22], k, p=[0.6, 0.25, 0.15])
    return _flows(
        rng.normal(1200, 250, k),
        port,
        np.where(port == 53, "udp", "tcp"),
        _lognormal(rng, 400, 1.0, k),
        rng.poisson(_lognormal(rng, 30, 1.0, k)) + 1,
        _lognormal(rng, 2e6, 1.4, k),
        _lognormal(rng, 15_000, 1.0, k),
    )


def _net_low_and_slow(rng, k, attack: str):
    """An attack hiding inside ordinary web/SSH traffic, tilted only slightly."""
    cols = _net_web(rng, k) if attack != "exfiltration" else _net_ssh(rng, k)
    if attack == "ddos":
        cols["request_count"] *= rng.uniform(1.5, 3, k)  # slowloris-style, just busier
        cols["packet_size"] *= rng.uniform(0.6, 0.9, k)
    elif attack == "port_scan":
        # Probes only ports that real services use, so the port alone gives it away less.
        cols["port"] = rng.choice(_SERVICE_PORTS, k).astype(float)
        cols["bytes_received"] *= rng.uniform(0.2, 0.8, k)
    else:
        cols["bytes_sent"] *= rng.uniform(2, 6, k)
        cols["duration"] *= rng.uniform(1.2, 2.5, k)
    return cols


_NETWORK_SAMPLERS: dict[str, Callable[[np.random.Generator, int], Columns]] = {
    "web": _net_web,
    "dns": _net_dns,
    "ssh": _net_ssh,
    "service": _net_service,
    "ping": _net_ping,
    "flash_crowd": _net_flash_crowd,
    "backup": _net_backup,
    "ddos": _net_ddos,
    "port_scan": _net_port_scan,
    "exfiltration": _net_exfiltration,
}

# profile -> (source pools, destination pools)
_NETWORK_ENDPOINTS = {
    "web": (["lan", "wifi", "vpn", "internet"], ["servers", "internet"]),
    "dns": (["lan", "wifi", "vpn"], ["servers"]),
    "ssh": (["lan", "vpn"], ["servers"]),
    "service": (["lan", "wifi", "servers", "internet"], ["servers", "internet"]),
    "ping": (["lan", "servers"], ["servers", "lan"]),
    "flash_crowd": (["internet", "wifi", "vpn"], ["servers"]),
    "backup": (["servers"], ["internet"]),
    "ddos": (["attacker_a", "attacker_b"], ["servers"]),
    "port_scan": (["attacker_a", "attacker_b"], ["servers", "lan"]),
    "exfiltration": (["lan", "servers"], ["attacker_a", "attacker_b"]),
}
# Share of attacks whose external end uses a benign-looking pool instead.
_ATTACKER_CAMOUFLAGE = 0.25


def _random_ip(rng: np.random.Generator, pool: str) -> str:
    prefix, free = _IP_POOLS[pool]
    octets = [int(rng.integers(0, 256)) for _ in range(free - 1)] + [int(rng.integers(1, 255))]
    return ".".join([prefix, *map(str, octets)])


_EXTERNAL_POOLS = {"internet", "attacker_a", "attacker_b"}


def _endpoint_pools(rng: np.random.Generator, profile: str) -> tuple[str, str]:
    src_pools, dst_pools = _NETWORK_ENDPOINTS[profile]
    src = src_pools[int(rng.integers(len(src_pools)))]
    dst = dst_pools[int(rng.integers(len(dst_pools)))]
    # Attackers also act from compromised internal hosts, VPN accounts and
    # clean-reputation addresses, so the IP is a hint, never a giveaway.
    if src.startswith("attacker") and rng.random() < _ATTACKER_CAMOUFLAGE:
        src = ("lan", "vpn", "internet")[int(rng.integers(3))]
    if dst.startswith("attacker") and rng.random() < _ATTACKER_CAMOUFLAGE:
        dst = "internet"
    # The sensor sits at our edge: every flow it sees has at least one internal end.
    if src in _EXTERNAL_POOLS and dst in _EXTERNAL_POOLS:
        dst = "servers"
    return src, dst


def _network_ips(rng: np.random.Generator, profiles: np.ndarray) -> tuple[list[str], list[str]]:
    src, dst = [], []
    for profile in profiles:
        src_pool, dst_pool = _endpoint_pools(rng, profile)
        src.append(_random_ip(rng, src_pool))
        dst.append(_random_ip(rng, dst_pool))
    return src, dst


def _network_columns(rng: np.random.Generator, n: int):
    malicious = rng.random(n) < _MALICIOUS_SHARE
    profiles = np.where(malicious, _assign(rng, n, _ATTACK_SHARES), _assign(rng, n, _NORMAL_SHARES))
    low_and_slow = malicious & (rng.random(n) < _LOW_AND_SLOW)

    cols = _empty_columns(
        n,
        ("packet_size", "port", "duration", "request_count", "bytes_sent", "bytes_received"),
        ("protocol",),
    )
    for profile, sampler in _NETWORK_SAMPLERS.items():
        mask = (profiles == profile) & ~low_and_slow
        _fill(cols, mask, sampler(rng, int(mask.sum())))
    for attack in _ATTACK_SHARES:
        mask = (profiles == attack) & low_and_slow
        _fill(cols, mask, _net_low_and_slow(rng, int(mask.sum()), attack))
    return cols, profiles, malicious


def _network_finish(rng: np.random.Generator, cols: Columns) -> Columns:
    """Add measurement noise and clip to what a flow exporter can report."""
    for name in ("duration", "request_count", "bytes_sent", "bytes_received"):
        cols[name] = _jitter(rng, cols[name], 0.2)
    cols["packet_size"] = np.clip(np.rint(_jitter(rng, cols["packet_size"], 0.1)), 40, 1500)
    cols["duration"] = np.clip(np.round(cols["duration"], 4), 0.0001, None)
    cols["request_count"] = np.maximum(np.rint(cols["request_count"]), 1)
    cols["bytes_sent"] = np.maximum(np.rint(cols["bytes_sent"]), 40)
    cols["bytes_received"] = np.maximum(np.rint(cols["bytes_received"]), 0)
    return cols


def generate_network(rng: np.random.Generator, n: int) -> Rows:
    cols, profiles, malicious = _network_columns(rng, n)
    cols = _network_finish(rng, cols)
    src, dst = _network_ips(rng, profiles)
    drop_duration = rng.random(n) < 0.01

    rows = []
    for i in range(n):
        row = {
            "packet_size": int(cols["packet_size"][i]),
            "port": int(cols["port"][i]),
            "protocol": str(cols["protocol"][i]),
            "duration": float(cols["duration"][i]),
            "request_count": int(cols["request_count"][i]),
            "bytes_sent": int(cols["bytes_sent"][i]),
            "bytes_received": int(cols["bytes_received"][i]),
            "src_ip": src[i],
            "dst_ip": dst[i],
            "label": "malicious" if malicious[i] else "normal",
            "attack_type": str(profiles[i]) if malicious[i] else "none",
        }
        if drop_duration[i]:
            del row["duration"]  # a flow exporter that lost the end timestamp
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- #
# fraud
# --------------------------------------------------------------------------- #

# category -> (share among legitimate, share among fraud, median legit amount)
_MERCHANTS = {
    "grocery": (0.22, 0.04, 45.0),
    "restaurant": (0.16, 0.03, 30.0),
    "fuel": (0.12, 0.05, 50.0),
    "pharmacy": (0.07, 0.02, 25.0),
    "clothing": (0.09, 0.08, 70.0),
    "entertainment": (0.08, 0.05, 40.0),
    "online_retail": (0.14, 0.22, 60.0),
    "electronics": (0.05, 0.25, 250.0),
    "travel": (0.05, 0.12, 400.0),
    "gambling": (0.02, 0.14, 100.0),
}
_FRAUD_SHARE = 0.05
_CARD_TESTING = 0.20


def _fraud_category(rng: np.random.Generator, fraud: np.ndarray) -> np.ndarray:
    legit = _assign(rng, len(fraud), {k: v[0] for k, v in _MERCHANTS.items()})
    bad = _assign(rng, len(fraud), {k: v[1] for k, v in _MERCHANTS.items()})
    return np.where(fraud, bad, legit)


def _fraud_amount(rng, category, fraud, card_testing):
    median = np.array([_MERCHANTS[c][2] for c in category])
    legit = median * rng.lognormal(0.0, 0.8, len(category))
    stolen = median * rng.lognormal(np.log(2.5), 1.0, len(category))
    probe = rng.uniform(0.5, 5.0, len(category))
    return np.where(card_testing, probe, np.where(fraud, stolen, legit))


def _fraud_hour(rng, fraud):
    n = len(fraud)
    daytime = np.rint(rng.normal(14, 4, n)) % 24
    # Fraudsters work around the clock, with a pronounced night-time bump.
    night = rng.choice([0, 1, 2, 3, 4, 5, 23], n)
    anytime = rng.integers(0, 24, n)
    fraud_hour = np.where(rng.random(n) < 0.35, night, anytime)
    return np.where(fraud, fraud_hour, daytime).astype(int)


def _fraud_distance(rng, fraud, traveller, card_not_present):
    n = len(fraud)
    home = _lognormal(rng, 5, 1.0, n)
    away = _lognormal(rng, 300, 1.3, n)
    legit = np.where(traveller, away, home)
    stolen = np.where(card_not_present, home, _lognormal(rng, 40, 1.5, n))
    return np.where(fraud, stolen, legit)


def _fraud_gap(rng, fraud):
    """Hours since the previous purchase on the card."""
    n = len(fraud)
    # Fraud comes in rapid bursts before the card is blocked; honest shopping
    # sprees (a mall visit, a checkout split in two) produce short gaps too.
    spree = rng.random(n) < 0.10
    legit = np.where(spree, _lognormal(rng, 0.5, 1.0, n), _lognormal(rng, 20, 1.2, n))
    return np.where(fraud, _lognormal(rng, 1.0, 1.5, n), legit)


def generate_fraud(rng: np.random.Generator, n: int) -> Rows:
    fraud = rng.random(n) < _FRAUD_SHARE
    card_testing = fraud & (rng.random(n) < _CARD_TESTING)
    card_not_present = fraud & (rng.random(n) < 0.45)
    traveller = ~fraud & (rng.random(n) < 0.04)

    category = _fraud_category(rng, fraud)
    amount = _jitter(rng, _fraud_amount(rng, category, fraud, card_testing), 0.05)
    distance = _fraud_distance(rng, fraud, traveller, card_not_present | card_testing)
    gap = _fraud_gap(rng, fraud)
    hour = _fraud_hour(rng, fraud)
    hour = np.where(traveller & (rng.random(n) < 0.5), rng.integers(0, 24, n), hour)
    international = np.where(fraud, rng.random(n) < 0.25, rng.random(n) < np.where(traveller, 0.6, 0.03))

    return [
        {
            "transaction_amount": round(float(max(amount[i], 0.01)), 2),
            "merchant_category": str(category[i]),
            "distance_from_home": round(float(distance[i]), 2),
            "time_since_last_transaction": round(float(gap[i]), 3),
            "transaction_hour": int(hour[i]),
            "is_international": bool(international[i]),
            "label": int(fraud[i]),
        }
        for i in range(n)
    ]


# --------------------------------------------------------------------------- #
# aiops
# --------------------------------------------------------------------------- #

# role -> (number of hosts, cpu baseline, memory baseline, disk MB/s, net Mbps)
_HOST_ROLES = {
    "web": (8, 30.0, 45.0, 5.0, 120.0),
    "api": (4, 40.0, 55.0, 8.0, 80.0),
    "db": (3, 35.0, 75.0, 60.0, 40.0),
    "cache": (2, 20.0, 70.0, 2.0, 150.0),
    "worker": (4, 55.0, 50.0, 25.0, 20.0),
}
_INCIDENT_SHARE = 0.08
_INCIDENT_SHARES = {"cpu_saturation": 0.4, "error_storm": 0.35, "memory_leak": 0.25}
_SUBTLE_INCIDENT = 0.15
_BUSY_NORMAL = 0.07


def _host_table(rng: np.random.Generator):
    """Per-host baselines: each machine has its own idea of 'normal'."""
    names, base = [], []
    for role, (count, cpu, mem, disk, net) in _HOST_ROLES.items():
        for j in range(1, count + 1):
            names.append(f"{role}-{j:02d}")
            base.append([cpu, mem, disk, net] * rng.uniform(0.8, 1.2, 4))
    return np.array(names, dtype=object), np.array(base)


def _aiops_normal(rng, base):
    k = len(base)
    return {
        "cpu_usage": base[:, 0] + rng.normal(0, 8, k),
        "memory_usage": base[:, 1] + rng.normal(0, 6, k),
        "disk_io": base[:, 2] * rng.lognormal(0, 0.5, k),
        "network_throughput": base[:, 3] * rng.lognormal(0, 0.5, k),
        "error_rate": rng.beta(1.0, 400.0, k),
        "response_time": _lognormal(rng, 120, 0.3, k),
    }


def _aiops_incident(rng, cols, kind: np.ndarray, strength: np.ndarray):
    """Push correlated metrics away from baseline; strength in (0, 1] scales the push."""
    cpu, leak, errors = kind == "cpu_saturation", kind == "memory_leak", kind == "error_storm"
    k = len(kind)
    cols["cpu_usage"] += cpu * strength * rng.uniform(40, 70, k)
    cols["response_time"] *= 1 + cpu * strength * rng.uniform(2, 8, k)
    cols["memory_usage"] += leak * strength * rng.uniform(25, 45, k)
    cols["disk_io"] *= 1 + leak * strength * rng.uniform(2, 6, k)  # swapping
    cols["response_time"] *= 1 + leak * strength * rng.uniform(0.5, 2, k)
    cols["error_rate"] += errors * strength * rng.uniform(0.03, 0.4, k)
    cols["response_time"] *= 1 + errors * strength * rng.uniform(0.3, 2, k)
    cols["network_throughput"] *= 1 - errors * strength * rng.uniform(0.2, 0.6, k)
    return cols


def _aiops_busy(rng, cols, busy):
    # Batch jobs and traffic peaks: hot CPU, but the service keeps up.
    k = len(busy)
    cols["cpu_usage"] += busy * rng.uniform(25, 50, k)
    cols["response_time"] *= 1 + busy * rng.uniform(0.2, 1.0, k)
    cols["network_throughput"] *= 1 + busy * rng.uniform(0.5, 2.0, k)
    return cols


def generate_aiops(rng: np.random.Generator, n: int) -> Rows:
    names, baselines = _host_table(rng)
    host_idx = rng.integers(0, len(names), n)
    incident = rng.random(n) < _INCIDENT_SHARE
    kind = np.where(incident, _assign(rng, n, _INCIDENT_SHARES), "none")
    subtle = rng.random(n) < _SUBTLE_INCIDENT
    strength = incident * np.where(subtle, rng.uniform(0.15, 0.4, n), rng.uniform(0.6, 1.0, n))
    busy = ~incident & (rng.random(n) < _BUSY_NORMAL)

    cols = _aiops_normal(rng, baselines[host_idx])
    cols = _aiops_incident(rng, cols, kind, strength)
    cols = _aiops_busy(rng, cols, busy)
    for name in ("disk_io", "network_throughput", "response_time"):
        cols[name] = _jitter(rng, cols[name], 0.1)

    return [
        {
            "cpu_usage": round(float(np.clip(cols["cpu_usage"][i], 0, 100)), 2),
            "memory_usage": round(float(np.clip(cols["memory_usage"][i], 0, 100)), 2),
            "disk_io": round(float(cols["disk_io"][i]), 2),
            "network_throughput": round(float(cols["network_throughput"][i]), 2),
            "error_rate": round(float(np.clip(cols["error_rate"][i], 0, 1)), 4),
            "response_time": round(float(cols["response_time"][i]), 2),
            "host": str(names[host_idx[i]]),
            "label": "incident" if incident[i] else "normal",
        }
        for i in range(n)
    ]


# --------------------------------------------------------------------------- #
# Public API
# --------------------------------------------------------------------------- #

GENERATORS: dict[str, Callable[[np.random.Generator, int], Rows]] = {
    "network": generate_network,
    "fraud": generate_fraud,
    "aiops": generate_aiops,
}


def generate(use_case: str, rows: int, seed: int = 0) -> Rows:
    """Return ``rows`` synthetic records for ``use_case``; deterministic in ``seed``."""
    if use_case not in GENERATORS:
        raise ValueError(f"unknown use case {use_case!r}; valid choices: {', '.join(sorted(GENERATORS))}")
    if rows < 0:
        raise ValueError(f"rows must be >= 0, got {rows}")
    return GENERATORS[use_case](np.random.default_rng(seed), int(rows))


def _csv_fields(rows: Rows) -> list[str]:
    # Union in first-seen order: the first row may be one whose duration is missing.
    fields: dict[str, None] = {}
    for row in rows:
        fields.update(dict.fromkeys(row))
    return list(fields)


def write(rows: Rows, path: str | Path) -> Path:
    """Write rows as JSON Lines (.jsonl), a JSON array (.json) or CSV (.csv)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in {".jsonl", ".json", ".csv"}:
        raise DataError(f"cannot write {path}: the name must end in .jsonl, .json or .csv (the format follows it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        if suffix == ".jsonl":
            fh.writelines(json.dumps(row) + "\n" for row in rows)
        elif suffix == ".json":
            # One row per line keeps large files diffable and greppable.
            body = ",\n".join("  " + json.dumps(row) for row in rows)
            fh.write("[\n" + body + "\n]\n" if rows else "[]\n")
        else:
            writer = csv.DictWriter(fh, fieldnames=_csv_fields(rows), restval="")
            writer.writeheader()
            writer.writerows(rows)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m trainer.synthetic",
        description="Generate a seeded synthetic security dataset.",
    )
    parser.add_argument("--use-case", required=True, choices=sorted(GENERATORS))
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", required=True, help="file ending in .jsonl, .json or .csv")
    args = parser.parse_args(argv)
    if args.rows < 0:
        parser.error("--rows must be >= 0")
    try:
        path = write(generate(args.use_case, args.rows, args.seed), args.output)
    except ValueError as exc:
        parser.error(str(exc))
    print(f"wrote {args.rows} {args.use_case} rows to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    main()
