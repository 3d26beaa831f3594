"""An iodine DNS tunnel to the victim's iodined, with traffic through it."""

from __future__ import annotations

from typing import Annotated, ClassVar

from jenga_edge.contract.typed import Invalid, doc

from .base import AttackStep, StepContext


class Step(AttackStep, tag="iodine", kw_only=True):
    binaries: ClassVar[tuple[str, ...]] = ("iodine", "ping", "curl")
    service: ClassVar[str | None] = "dns_tunnel"

    pings: Annotated[int, doc("pings through the tunnel, per session", ge=0, le=10000)] = 60
    sessions: Annotated[int, doc("tunnel sessions one after another (each a new socket: a new flow)", ge=1, le=100)] = 1
    download: Annotated[
        str,
        doc("path fetched over HTTP through the tunnel (from the victim's site)", pattern=r"^/[A-Za-z0-9._/-]{1,200}$"),
    ] = "/pkg/update-0.bin"

    def __post_init__(self) -> None:
        if ".." in self.download.split("/"):
            raise Invalid("download", f"{self.download!r}: a path inside the site, without '..'")

    def command(self, ctx: StepContext) -> list[str]:
        return self.client(ctx, pings=self.pings, download=self.download, sessions=self.sessions)
