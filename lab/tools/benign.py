"""Benign behaviours: people and machines using the victim's services (lab/clients.py runs them)."""

from __future__ import annotations

from typing import Annotated, ClassVar

from jenga_edge.contract.typed import doc

from .base import BenignStep, StepContext


class Web(BenignStep, tag="web", kw_only=True):
    """Browsing: a page and its objects over one or two keep-alive connections, then a pause."""

    service: ClassVar[str | None] = "http"
    service_ports: ClassVar[tuple[int, ...]] = (80,)
    pages_per_minute: Annotated[float, doc("mean page views per minute", gt=0, le=600)] = 6

    def command(self, ctx: StepContext) -> list[str]:
        return self.client(ctx, per_minute=self.pages_per_minute)


class Dns(BenignStep, tag="dns", kw_only=True):
    """Name lookups: mostly the lab's names, some unknown ones, A and AAAA."""

    service: ClassVar[str | None] = "dns"
    service_ports: ClassVar[tuple[int, ...]] = (53,)
    lookups_per_minute: Annotated[float, doc("mean lookups per minute", gt=0, le=6000)] = 20

    def command(self, ctx: StepContext) -> list[str]:
        return self.client(ctx, per_minute=self.lookups_per_minute)


class Ssh(BenignStep, tag="ssh", kw_only=True):
    """Interactive SSH sessions typed at a human pace, and scp copies both ways."""

    binaries: ClassVar[tuple[str, ...]] = ("ssh", "scp")
    service: ClassVar[str | None] = "ssh"
    service_ports: ClassVar[tuple[int, ...]] = (22,)
    sessions_per_minute: Annotated[float, doc("mean sessions started per minute", gt=0, le=60)] = 1

    def command(self, ctx: StepContext) -> list[str]:
        return self.client(ctx, per_minute=self.sessions_per_minute)


class Ftp(BenignStep, tag="ftp", kw_only=True):
    """Anonymous FTP: listings and downloads of files of many sizes."""

    binaries: ClassVar[tuple[str, ...]] = ("curl",)
    service: ClassVar[str | None] = "ftp"
    service_ports: ClassVar[tuple[int, ...]] = (21,)  # and the passive data ports (services.PASV)
    transfers_per_minute: Annotated[float, doc("mean transfers per minute", gt=0, le=600)] = 3

    def command(self, ctx: StepContext) -> list[str]:
        return self.client(ctx, per_minute=self.transfers_per_minute)


class Machine(BenignStep, tag="machine", kw_only=True):
    """A machine on a timer: health checks, an update check, now and then a large download."""

    service: ClassVar[str | None] = "http"
    service_ports: ClassVar[tuple[int, ...]] = (80, 53)
    period_s: Annotated[float, doc("seconds between checks (jittered by 10 %)", ge=0.5, le=3600)] = 15

    def command(self, ctx: StepContext) -> list[str]:
        return self.client(ctx, period=self.period_s)


class Chatter(BenignStep, tag="chatter", kw_only=True):
    """LAN background, mostly unanswered: mDNS, LLMNR and SSDP queries to their multicast groups,
    NetBIOS name queries to the broadcast address, and connections to services the server
    does not run (refused)."""

    service_ports: ClassVar[tuple[int, ...]] = (5353, 5355, 1900, 137, 631, 9100, 8080, 3128)
    events_per_minute: Annotated[float, doc("mean announcements and attempts per minute", gt=0, le=600)] = 6

    def command(self, ctx: StepContext) -> list[str]:
        return self.client(ctx, per_minute=self.events_per_minute, address=ctx.address, broadcast=ctx.broadcast)
