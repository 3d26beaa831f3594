"""One lab run: build, serve, capture, run the steps on schedule, tear down, then Suricata and labels.

Outputs in OUT:
    capture.pcap         what crossed the lab's bridge (tcpdump)
    suricata/eve.json    Suricata's records of it
    labelled.jsonl.gz    the records, each with its `lab` label (labels.py)
    truth.json           who ran what, when: the ground truth the labels come from
    manifest.json        scenario, seeds, tool versions, counts, host check, sha256 of every output
    logs/                one log per process
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from jenga_edge.contract.digest import sha256_file as sha256

from . import labels, safety, services, suricata
from .addresses import DOC_RANGES, network
from .errors import LabError
from .procs import Proc, Processes, in_netns
from .scenario import Scenario
from .tools import Step, StepContext
from .topology import Topology

REPO = Path(__file__).resolve().parents[1]
HARD_EXTRA_S = 30.0  # the whole traffic phase is cut at duration_s plus this


class Interrupted(LabError):
    pass


def missing_tools(scenario: Scenario) -> list[str]:
    return [b for b in scenario.binaries() if services.which(b) is None]


APT = (
    "apt-get install -y nmap masscan hping3 hydra slowhttptest iodine dnsmasq-base openssh-server openssh-client "
    "vsftpd nginx-light curl iputils-ping tcpdump iproute2; for Suricata 7, add bookworm-backports "
    "(deb http://deb.debian.org/debian bookworm-backports main), apt-get update, "
    "apt-get install -y -t bookworm-backports suricata (lab/README.md)"
)


def preflight(scenario: Scenario, topo: Topology) -> None:
    """Everything that must hold before a namespace is made; raises LabError naming what does not."""
    safety.require_root()
    missing = missing_tools(scenario)
    if missing:
        raise LabError(f"missing: {', '.join(missing)}. On Debian 12: {APT}")
    lab_nets: list[tuple[str, Any]] = [
        ("the lab's subnet", network(scenario.subnet)),
        ("the tunnel subnet", network(services.TUNNEL_NET)),
    ]
    spoofs = {s for step in scenario.steps for s in step.spoofed()}
    lab_nets += [("spoofed range", r) for r in DOC_RANGES if any(_in(s, r) for s in spoofs)]
    safety.check_no_overlap(lab_nets, safety.host_networks())
    clash = [n for n in safety.netns_names() if n.startswith(topo.prefix)]
    if clash:
        raise LabError(f"namespaces {clash} already exist: another lab run? (remove them with ip netns del)")


def _in(addr: str, net: Any) -> bool:
    import ipaddress

    return ipaddress.ip_address(addr) in net


def _on_signal(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(f"stopped by signal {signum}; the lab was torn down")


class Run:
    def __init__(self, scenario: Scenario, out: Path, scenario_path: Path | None = None):
        self.scenario, self.out, self.scenario_path = scenario, out.resolve(), scenario_path
        self.topo = Topology(scenario)
        # No proxy settings: a host's http_proxy would send the clients' curl/HTTP past the lab.
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env.update(PYTHONPATH=str(REPO), TZ="UTC")
        self.procs = Processes(out / "logs", env=env)
        self.truth: list[dict[str, Any]] = []
        self.failed: list[str] = []

    # ------------------------------------------------------------------ phases

    def traffic(self) -> None:
        sc, topo = self.scenario, self.topo
        victim = topo.hosts[sc.victim]
        site = self.out / "work" / "site"
        site.mkdir(parents=True, exist_ok=True)
        services.make_site(site, sc.seed, victim.address)
        svcs = services.commands(sc.hosts[sc.victim].services, self.out / "work" / "victim", site, victim.address)
        for name in services.ORDER:
            if name in svcs:
                proc = self.procs.start(f"service-{name}", svcs[name], victim.netns)
                services.wait_ready(["ip", "netns", "exec", victim.netns], name, victim.address, proc.log)
        pcap = self.out / "capture.pcap"
        tcpdump = self.procs.start("tcpdump", ["tcpdump", "-i", "br0", "-n", "-s", "0", "-U", "-Z", "root",
                                               "-w", str(pcap)], topo.bridge_ns)  # fmt: skip
        time.sleep(1.5)
        if tcpdump.poll() is not None:
            raise LabError(f"tcpdump exited at once: see {tcpdump.log}")
        self.schedule(site)
        time.sleep(3.0)  # the last replies and RSTs
        self.procs.stop(tcpdump, grace=5.0)

    def schedule(self, site: Path) -> None:
        sc, topo = self.scenario, self.topo
        victim = topo.hosts[sc.victim]
        pending = sorted(enumerate(sc.steps), key=lambda p: p[1].at)
        running: list[tuple[int, Step, Proc]] = []
        t0 = time.monotonic()
        while pending or running:
            now = time.monotonic() - t0
            # Steps past their end are stopped before any new one starts: one host's attacks never overlap.
            for entry in list(running):
                i, step, proc = entry
                over = now >= step.at + step.duration or now >= sc.duration_s + HARD_EXTRA_S
                if proc.poll() is None and not over:
                    continue
                rc = self.procs.stop(proc) if proc.poll() is None else proc.poll()
                running.remove(entry)
                self._record(i, step, proc, rc)
            now = time.monotonic() - t0
            while pending and pending[0][1].at <= now:
                i, step = pending.pop(0)
                host = topo.hosts[step.host]
                ctx = StepContext(host.address, host.mac, victim.address, victim.mac, sc.step_seed(i),
                                  self.out / "work" / "steps" / step.name, site,
                                  broadcast=str(topo.net.broadcast_address))  # fmt: skip
                ctx.dir.mkdir(parents=True, exist_ok=True)
                argv = step.command(ctx)
                running.append((i, step, self.procs.start(f"step-{step.name}", argv, host.netns, cwd=ctx.dir)))
            time.sleep(0.1)

    def _record(self, i: int, step: Step, proc: Proc, rc: int | None) -> None:
        host = self.topo.hosts[step.host]
        ports = [[p, p] for p in step.service_ports]
        if step.tool == "ftp":
            ports.append(list(services.PASV))
        stopped = proc.stopped_by_lab
        if not stopped and rc is not None and rc not in step.ok_exits:
            self.failed.append(f"{step.name} ({step.tool}) exited {rc}: see {proc.log}")
        self.truth.append({
            "name": step.name, "tool": step.tool, "role": step.role, "host": step.host,
            "addresses": [host.address, *step.spoofed()], "ports": ports, "seed": self.scenario.step_seed(i),
            "start": proc.started, "end": proc.ended or time.time(), "exit": rc, "stopped_at_duration": stopped,
            "argv": proc.argv,
        })  # fmt: skip

    # ------------------------------------------------------------------ all of it

    def run(self) -> dict[str, Any]:
        preflight(self.scenario, self.topo)
        self.out.mkdir(parents=True, exist_ok=True)
        for stale in ("suricata", "capture.pcap", "labelled.jsonl.gz", "truth.json", "manifest.json"):
            if (self.out / stale).exists():
                raise LabError(f"{self.out / stale} exists: give an empty output folder")
        before = safety.host_state(self.topo.prefix)
        old = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGHUP)}
        started = time.time()
        try:
            self.topo.build()
            self.traffic()
        finally:
            # Cleanup runs to the end: a second signal now would leak namespaces and daemons.
            for s in (signal.SIGINT, *old):
                signal.signal(s, signal.SIG_IGN)
            try:
                self.procs.stop_all()
            finally:
                problems = self.topo.teardown()
                self._remove_privsep()
                signal.signal(signal.SIGINT, signal.default_int_handler)
                for s, h in old.items():
                    signal.signal(s, h)
        after = safety.host_state(self.topo.prefix)
        problems += safety.differences(before, after)
        self.truth.sort(key=lambda t: t["start"])
        (self.out / "truth.json").write_text(
            json.dumps({"scenario": self.scenario.name, "steps": self.truth}, indent=1)
        )
        counts = process_capture(self.out)
        manifest = self.manifest(started, counts, problems)
        (self.out / "manifest.json").write_text(json.dumps(manifest, indent=1))
        if problems:
            raise LabError(f"the host was not left as found: {'; '.join(problems)}")
        if self.failed:
            raise LabError(f"{len(self.failed)} step(s) failed: {'; '.join(self.failed)}")
        return manifest

    def _remove_privsep(self) -> None:
        """/run/sshd, if this run made it (services.py) and it is still empty."""
        if (self.out / "work" / "victim" / "made-run-sshd").exists():
            try:
                services.PRIVSEP.rmdir()
            except OSError:
                pass

    def manifest(self, started: float, counts: dict[str, Any], problems: list[str]) -> dict[str, Any]:
        sc_file = self.scenario_path
        return {
            "scenario": self.scenario.name, "seed": self.scenario.seed,
            "scenario_file": str(sc_file) if sc_file else None,
            "scenario_sha256": sha256(sc_file) if sc_file else None,
            "started": started, "traffic_s": round(time.time() - started, 1),
            "tools": tool_versions(self.scenario.binaries()), "suricata": suricata.version(),
            "suricata_config_sha256": sha256(suricata.CONFIG),
            "kernel": platform.release(), "python": sys.version.split()[0],
            "host_unchanged": not problems, "problems": problems, "failed_steps": self.failed,
            "counts": counts, "sha256": output_hashes(self.out),
        }  # fmt: skip


OUTPUTS = ("capture.pcap", "suricata/eve.json", "labelled.jsonl.gz", "truth.json")  # hashed in the manifest


def output_hashes(out: Path) -> dict[str, str]:
    return {f: sha256(out / f) for f in OUTPUTS if (out / f).exists()}


def process_capture(out: Path, suricata_again: bool = True) -> dict[str, Any]:
    """Suricata on OUT/capture.pcap (or its eve.json as it is), then the labels from
    OUT/truth.json; returns the counts."""
    eve = suricata.run_offline(out / "capture.pcap", out / "suricata") if suricata_again else out / "suricata/eve.json"
    return labels.label_file(eve, labels.load_truth(out / "truth.json"), out / "labelled.jsonl.gz")


def reprocess(out: Path, suricata_again: bool = True) -> dict[str, Any]:
    """A finished run through the current Suricata config and labeller again (the traffic is not rerun):
    the old suricata/ moves aside, the manifest's counts, hashes and Suricata fields are rewritten."""
    manifest = json.loads((out / "manifest.json").read_text())
    old = out / "suricata"
    if old.exists() and suricata_again:
        aside = out / f"suricata.{int(time.time())}"
        old.rename(aside)
    manifest["counts"] = process_capture(out, suricata_again)
    manifest["suricata"], manifest["suricata_config_sha256"] = suricata.version(), sha256(suricata.CONFIG)
    manifest["sha256"] = output_hashes(out)
    manifest["reprocessed"] = time.time()
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return manifest


def tool_versions(binaries: list[str]) -> dict[str, str]:
    """binary -> Debian package and version (dpkg), or what the binary path is."""
    out: dict[str, str] = {}
    for b in binaries:
        path = services.which(b)
        if path is None:
            continue
        real = os.path.realpath(path)
        pkg = ""
        # dpkg knows a file by the path its package installed (usrmerge: /bin/ip is /usr/bin/ip).
        for candidate in dict.fromkeys([real, path, f"/bin/{b}", f"/sbin/{b}", f"/usr/sbin/{b}"]):
            owner = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True, check=False, timeout=30)
            if owner.returncode == 0:
                pkg = owner.stdout.split(":")[0].strip()
                break
        if not pkg:
            out[b] = real
            continue
        ver = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True, text=True,
                             check=False, timeout=30)  # fmt: skip
        out[b] = f"{pkg} {ver.stdout.strip()}"
    return out


__all__ = ["APT", "Run", "in_netns", "missing_tools", "preflight"]
