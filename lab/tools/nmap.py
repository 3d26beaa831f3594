"""nmap port scans: SYN, connect, UDP and version detection."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from jenga_edge.contract.typed import doc

from .base import PORTS, AttackStep, StepContext, check_ports

FLAGS = {"syn": ["-sS"], "connect": ["-sT"], "udp": ["-sU"], "version": ["-sV", "--version-intensity", "2"]}


class Step(AttackStep, tag="nmap", kw_only=True):
    binaries: ClassVar[tuple[str, ...]] = ("nmap",)

    scan: Literal["syn", "connect", "udp", "version"] = "syn"
    ports: Annotated[str, doc("nmap port list, e.g. 1-1024 or 21,22,80", pattern=PORTS)] = "1-1024"
    rate: Annotated[float, doc("most packets per second (--max-rate)", ge=1, le=5000)] = 300

    def __post_init__(self) -> None:
        check_ports(self.ports)

    def command(self, ctx: StepContext) -> list[str]:
        return [
            "nmap", "-n", "-Pn", *FLAGS[self.scan], "-p", self.ports,
            "--max-rate", f"{self.rate:g}", "--max-retries", "1",
            "--host-timeout", f"{int(self.duration)}s", "-e", "eth0", ctx.target_address,
        ]  # fmt: skip
