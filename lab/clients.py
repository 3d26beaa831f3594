"""Behaviours run inside a lab host's namespace: benign users and machines, and the iodine tunnel.

    python -m lab.clients web '{"target": "10.77.0.10", "seed": 1, "duration": 60, "site": "...", "per_minute": 6}'

Each behaviour draws its choices from its seed, stops by itself at its duration
and caps what it does by count, so a runaway run is impossible even without the
runner (which also stops it at the step's end). Standard library only: this
runs under the lab host's namespace with nothing but Python.
"""

from __future__ import annotations

import http.client
import json
import random
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1",
    "curl/7.88.1",
]
MAX_ACTIONS = 100_000
SSH_COMMANDS = ["uptime", "ls -la /tmp", "df -h", "uname -a", "cat /etc/os-release", "ps aux | head -20",
                "free -m", "date", "id", "ls /usr/share/doc | head -30", "echo done"]  # fmt: skip


def said(proc: subprocess.CompletedProcess[Any]) -> None:
    """A helper program that failed is said in the step's log (its traffic may be missing)."""
    if proc.returncode:
        print(f"{proc.args[0]} exited {proc.returncode}: {' '.join(map(str, proc.args))[:200]}", file=sys.stderr)


class Clock:
    def __init__(self, duration: float):
        self.deadline = time.monotonic() + duration

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def sleep(self, seconds: float) -> bool:
        """Sleep `seconds` unless the deadline comes first; False once it has."""
        time.sleep(max(0.0, min(seconds, self.left())))
        return self.left() > 0


def think(rng: random.Random, per_minute: float) -> float:
    """A pause between actions: exponential with mean 60/per_minute, so actions arrive as a Poisson process."""
    return rng.expovariate(per_minute / 60.0)


# ---------------------------------------------------------------------------- web


def _get(conn: http.client.HTTPConnection, path: str, ua: str) -> int:
    conn.request("GET", path, headers={"User-Agent": ua, "Accept": "*/*"})
    resp = conn.getresponse()
    resp.read()
    return resp.status


def web(a: dict[str, Any], site: dict[str, Any], rng: random.Random, clock: Clock) -> None:
    ua = rng.choice(USER_AGENTS)
    for _ in range(MAX_ACTIONS):
        page = rng.choice(site["pages"])
        conns = [http.client.HTTPConnection(a["target"], 80, timeout=10) for _ in range(rng.choice([1, 1, 2]))]
        try:
            _get(conns[0], page["path"], ua)
            for i, obj in enumerate(page["objects"]):
                _get(conns[i % len(conns)], obj, ua)
                time.sleep(rng.uniform(0, 0.05))
            if rng.random() < 0.05:
                _get(conns[0], f"/news/{rng.randint(100, 999)}.html", ua)  # a dead link: 404
        except OSError as exc:
            print(f"web: {exc}", file=sys.stderr)
        finally:
            for c in conns:
                c.close()
        if not clock.sleep(think(rng, a["per_minute"])):
            return


# ---------------------------------------------------------------------------- dns


def dns_query(name: str, qtype: int, rng: random.Random) -> bytes:
    head = struct.pack(">HHHHHH", rng.getrandbits(16), 0x0100, 1, 0, 0, 0)
    qname = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return head + qname + struct.pack(">HH", qtype, 1)


def lookup(target: str, name: str, qtype: int, rng: random.Random) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:  # a new source port each time, as stub resolvers do
        s.settimeout(2)
        s.sendto(dns_query(name, qtype, rng), (target, 53))
        try:
            s.recv(4096)
        except TimeoutError:
            pass


def pick_name(site: dict[str, Any], rng: random.Random) -> tuple[str, int]:
    r = rng.random()
    if r < 0.8:
        name = rng.choice(site["names"])
    elif r < 0.9:
        name = f"host{rng.randint(1, 500)}.{site['zone']}"  # NXDOMAIN
    else:
        name = rng.choice(["example.org", "debian.org", "pypi.org", "wikipedia.org"])  # refused: no upstream
    qtype = rng.choices([1, 28, 15, 16], weights=[70, 20, 5, 5])[0]
    return name, qtype


def dns(a: dict[str, Any], site: dict[str, Any], rng: random.Random, clock: Clock) -> None:
    for _ in range(MAX_ACTIONS):
        name, qtype = pick_name(site, rng)
        lookup(a["target"], name, qtype, rng)
        if not clock.sleep(think(rng, a["per_minute"])):
            return


# ---------------------------------------------------------------------------- ssh


# No user ssh config, no known_hosts, no shell history on the victim (it shares the host's disk).
SSH_OPTS = ["-F", "/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10",
            "-o", "SetEnv=HISTFILE=/dev/null"]  # fmt: skip


def ssh_session(a: dict[str, Any], site: dict[str, Any], rng: random.Random, clock: Clock) -> None:
    """An interactive session: commands typed a key at a time, with pauses to read the output.
    No terminal is allocated (-T): a pty would make sshd record the login in the host's utmp."""
    argv = ["ssh", "-T", "-i", site["client_key"], *SSH_OPTS, f"root@{a['target']}"]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert proc.stdin is not None
    try:
        time.sleep(1.0)
        for cmd in rng.sample(SSH_COMMANDS, rng.randint(2, 7)):
            for ch in cmd + "\n":
                proc.stdin.write(ch.encode())
                proc.stdin.flush()
                time.sleep(rng.uniform(0.05, 0.25))
            if not clock.sleep(rng.uniform(1, 8)):
                break
        proc.stdin.write(b"exit\n")
        proc.stdin.flush()
        proc.wait(timeout=max(1.0, min(10.0, clock.left())))
    except (OSError, subprocess.TimeoutExpired):
        proc.kill()
        proc.wait()


def scp_copy(a: dict[str, Any], site: dict[str, Any], rng: random.Random, clock: Clock) -> None:
    files = site["ftp_files"]
    local = site["uploads"] + f"/../ftp{rng.choice(files)}"
    remote = f"root@{a['target']}:{site['uploads']}/up{rng.randint(0, 9)}.dat"
    copy = "scp-download.dat"  # in the step's own folder (the client's working directory)
    pair = [local, remote] if rng.random() < 0.5 else [remote, copy]
    proc = subprocess.run(["scp", "-q", "-i", site["client_key"], *SSH_OPTS, *pair], timeout=max(1.0, clock.left()),
                          check=False, capture_output=True)  # fmt: skip
    if proc.returncode:
        print(f"scp: {proc.stderr.decode(errors='replace')[:200]}", file=sys.stderr)


def ssh(a: dict[str, Any], site: dict[str, Any], rng: random.Random, clock: Clock) -> None:
    for _ in range(MAX_ACTIONS):
        try:
            (scp_copy if rng.random() < 0.3 else ssh_session)(a, site, rng, clock)
        except subprocess.TimeoutExpired:
            return
        if not clock.sleep(think(rng, a["per_minute"])):
            return


# ---------------------------------------------------------------------------- ftp


def ftp(a: dict[str, Any], site: dict[str, Any], rng: random.Random, clock: Clock) -> None:
    for _ in range(MAX_ACTIONS):
        if rng.random() < 0.25:
            urls = [f"ftp://{a['target']}{rng.choice(site['ftp_dirs'])}/"]
        else:
            urls = [f"ftp://{a['target']}{f}" for f in rng.sample(site["ftp_files"], rng.randint(1, 3))]
        argv = ["curl", "-s", "--noproxy", "*", "--max-time", str(int(max(1, min(60, clock.left())))), "--ftp-pasv"]
        for u in urls:
            argv += ["-o", "/dev/null", u]
        said(subprocess.run(argv, check=False, timeout=max(1.0, clock.left() + 5)))
        if not clock.sleep(think(rng, a["per_minute"])):
            return


# ---------------------------------------------------------------------------- machine


def machine(a: dict[str, Any], site: dict[str, Any], rng: random.Random, clock: Clock) -> None:
    ua = f"lab-agent/{rng.randint(1, 9)}.{rng.randint(0, 9)}"
    clock.sleep(rng.uniform(0, a["period"]))  # machines are not in phase
    for n in range(MAX_ACTIONS):
        lookup(a["target"], f"update.{site['zone']}", 1, rng)
        conn = http.client.HTTPConnection(a["target"], 80, timeout=30)
        try:
            _get(conn, "/health", ua)
            if n % 10 == 9:
                _get(conn, rng.choice(site["updates"]), ua)
        except OSError as exc:
            print(f"machine: {exc}", file=sys.stderr)
        finally:
            conn.close()
        if not clock.sleep(a["period"] * rng.uniform(0.9, 1.1)):
            return


# ---------------------------------------------------------------------------- chatter

# LAN background a sensor sees everywhere and most of it unanswered: service discovery
# (mDNS, LLMNR, SSDP, NetBIOS name queries) and clients trying a service that is not
# there (printers, a proxy). Without it, "a flow nobody answered" would mean "attack".
DISCOVERY = {
    "mdns": ("224.0.0.251", 5353), "llmnr": ("224.0.0.252", 5355), "ssdp": ("239.255.255.250", 1900),
}  # fmt: skip
MISSING_SERVICES = (631, 9100, 8080, 3128)


def mdns_query(name: str, rng: random.Random) -> bytes:
    return dns_query(name, 12 if name.startswith("_") else 1, rng)


def netbios_query(name: str, rng: random.Random) -> bytes:
    """A NetBIOS name query (RFC 1002): the name in first-level encoding, broadcast."""
    padded = name.upper()[:15].ljust(15) + "\0"
    encoded = "".join(chr(0x41 + (ord(c) >> 4)) + chr(0x41 + (ord(c) & 0xF)) for c in padded)
    head = struct.pack(">HHHHHH", rng.getrandbits(16), 0x0110, 1, 0, 0, 0)
    return head + bytes([32]) + encoded.encode() + b"\0" + struct.pack(">HH", 0x20, 1)


def announce(kind: str, a: dict[str, Any], rng: random.Random) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(1)
        if kind == "netbios":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            s.sendto(netbios_query(rng.choice(["fileserver", "printer", "nas", "wpad"]), rng), (a["broadcast"], 137))
            return
        # No multicast route in the lab: the interface is named by its address instead.
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(a["address"]))
        s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        group = DISCOVERY[kind]
        if kind == "ssdp":
            msg = (b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\nMX: 2\r\n"
                   b"ST: ssdp:all\r\n\r\n")  # fmt: skip
        elif kind == "mdns":
            msg = mdns_query(rng.choice(["_services._dns-sd._udp.local", "_ipp._tcp.local", "_googlecast._tcp.local",
                                         f"host{rng.randint(1, 40)}.local"]), rng)  # fmt: skip
        else:
            msg = dns_query(rng.choice(["wpad", "fileserver", f"pc{rng.randint(1, 99)}"]), 1, rng)
        s.sendto(msg, group)


def knock(a: dict[str, Any], rng: random.Random) -> None:
    """A client trying a service the server does not run: the SYN is answered by a RST."""
    try:
        socket.create_connection((a["target"], rng.choice(MISSING_SERVICES)), timeout=2).close()
    except OSError:
        pass


def chatter(a: dict[str, Any], site: dict[str, Any], rng: random.Random, clock: Clock) -> None:
    for _ in range(MAX_ACTIONS):
        what = rng.choices(["mdns", "llmnr", "ssdp", "netbios", "knock"], weights=[35, 20, 15, 20, 10])[0]
        try:
            knock(a, rng) if what == "knock" else announce(what, a, rng)
        except OSError as exc:
            print(f"chatter {what}: {exc}", file=sys.stderr)
        if not clock.sleep(think(rng, a["per_minute"])):
            return


# ---------------------------------------------------------------------------- iodine (attack)


def tunnel_up() -> bool:
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "dev", "dns0"], capture_output=True, text=True, check=False)
    return "inet " in out.stdout


def tunnel_session(a: dict[str, Any], t: dict[str, Any], clock: Clock, seconds: float) -> None:
    """One tunnel: up, pings and a download through it, then idle (polling) until `seconds` have passed."""
    end = min(clock.deadline, time.monotonic() + seconds)
    proc = subprocess.Popen(["iodine", "-f", "-r", "-P", t["password"], a["target"], t["domain"]])
    try:
        while not tunnel_up():
            if proc.poll() is not None or not clock.sleep(0.5):
                raise SystemExit(f"iodine: the tunnel did not come up (exit {proc.poll()})")
        left = lambda: max(1.0, end - time.monotonic())  # noqa: E731
        if a["pings"]:
            said(subprocess.run(["ping", "-q", "-c", str(a["pings"]), "-i", "0.2", "-W", "2", t["server"]],
                                check=False, timeout=left()))  # fmt: skip
        url = f"http://{t['server']}{a['download']}"
        said(subprocess.run(["curl", "-s", "--noproxy", "*", "-o", "/dev/null", "--max-time", str(int(left())), url],
                            check=False, timeout=left() + 1))  # fmt: skip
        clock.sleep(end - time.monotonic())  # the tunnel stays up, polling, as a real one does
    except subprocess.TimeoutExpired:
        pass
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def iodine(a: dict[str, Any], site: dict[str, Any], rng: random.Random, clock: Clock) -> None:
    sessions = int(a.get("sessions", 1))
    for n in range(sessions):
        tunnel_session(a, site["tunnel"], clock, clock.left() / (sessions - n) - 0.5)
        if clock.left() <= 1:
            return
        clock.sleep(rng.uniform(0.5, 2.0))  # reconnects, from a new source port


BEHAVIOURS: dict[str, Callable[[dict[str, Any], dict[str, Any], random.Random, Clock], None]] = {
    "web": web, "dns": dns, "ssh": ssh, "ftp": ftp, "machine": machine, "chatter": chatter, "iodine": iodine,
}  # fmt: skip


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in BEHAVIOURS:
        print(f"usage: python -m lab.clients {{{','.join(BEHAVIOURS)}}} JSON", file=sys.stderr)
        return 2
    a = json.loads(argv[1])
    with open(f"{a['site']}/site.json") as fh:
        site = json.load(fh)
    BEHAVIOURS[argv[0]](a, site, random.Random(a["seed"]), Clock(float(a["duration"])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
