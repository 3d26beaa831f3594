"""An iodine DNS tunnel to the victim's iodined, with traffic through it."""

from __future__ import annotations

from typing import Annotated, ClassVar

from jenga_edge.contract.typed import doc

from .base import AttackStep, StepContext


class Step(AttackStep, tag="iodine", kw_only=True):
    binaries: ClassVar[tuple[str, ...]] = ("iodine", "ping", "curl")
    service: ClassVar[str | None] = "dns_tunnel"

    pings: Annotated[int, doc("pings through the tunnel", ge=0, le=10000)] = 60
    download: Annotated[str, doc("path fetched over HTTP through the tunnel")] = "/pkg/update-0.bin"

    def command(self, ctx: StepContext) -> list[str]:
        return self.client(ctx, pings=self.pings, download=self.download)
