"""masscan: a stateless SYN scan with its own packet engine."""

from __future__ import annotations

from typing import Annotated, ClassVar

from jenga_edge.contract.typed import doc

from .base import PORTS, AttackStep, StepContext, check_ports


class Step(AttackStep, tag="masscan", kw_only=True):
    binaries: ClassVar[tuple[str, ...]] = ("masscan",)

    ports: Annotated[str, doc("port list, e.g. 1-2000", pattern=PORTS)] = "1-2000"
    rate: Annotated[float, doc("packets per second (--rate)", ge=1, le=5000)] = 500

    def __post_init__(self) -> None:
        check_ports(self.ports)

    def command(self, ctx: StepContext) -> list[str]:
        # masscan writes frames itself: it needs the interface, its own and the next hop's MAC
        # (the victim is on the same segment, so that is the victim's).
        return [
            "masscan", ctx.target_address, "-p", self.ports, "--rate", f"{self.rate:g}",
            "--adapter", "eth0", "--adapter-ip", ctx.address, "--adapter-mac", ctx.mac,
            "--router-mac", ctx.target_mac, "--wait", "2", "--seed", str(ctx.seed),
        ]  # fmt: skip
