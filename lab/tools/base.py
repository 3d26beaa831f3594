"""What every scenario step has, and what a tool's module provides.

A tool is one module in lab/tools/ with a `Step` subclass tagged with the tool's
name (the `tool:` key of a scenario step), plus one line in tools/__init__.py.
The subclass declares its role, the binaries it runs and the victim service it
needs, and turns itself into one argv (never a shell line) in `command`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, ClassVar, Literal

from jenga_edge.contract.typed import Config, Invalid, doc

NAME = r"^[a-z][a-z0-9_-]{0,31}$"
Role = Literal["attack", "benign"]


@dataclass(frozen=True)
class StepContext:
    """What a step needs to know about the lab when it is started."""

    address: str  # the step's host
    mac: str
    target_address: str  # the victim
    target_mac: str
    seed: int
    dir: Path  # the step's own folder (word lists, output)
    site: Path  # the victim's shared files (site map, client key)
    broadcast: str = "255.255.255.255"  # the lab subnet's broadcast address
    python: tuple[str, ...] = field(default=(sys.executable, "-m", "lab.clients"))


class Step(Config, tag_field="tool", kw_only=True):
    """A step of a scenario: one tool run from one host, from `at` for at most `duration` seconds."""

    role: ClassVar[Role]
    binaries: ClassVar[tuple[str, ...]] = ()
    service: ClassVar[str | None] = None
    ok_exits: ClassVar[tuple[int, ...]] = (0,)  # exit statuses that mean the tool did its job
    # A benign host runs several behaviours at once; their destination ports tell them apart.
    service_ports: ClassVar[tuple[int, ...]] = ()

    name: Annotated[str, doc("unique name of the step (labels cite it)", pattern=NAME)]
    host: Annotated[str, doc("the host (a key of `hosts`) the tool runs on", pattern=NAME)]
    at: Annotated[float, doc("start, seconds after traffic begins", ge=0, le=86400)] = 0.0
    duration: Annotated[float, doc("the step is stopped after this many seconds", gt=0, le=3600)]
    seed: Annotated[int, doc("seed of the step's random choices (default: from the scenario's)", ge=0)] | None = None

    @property
    def tool(self) -> str:
        return str(self.__struct_config__.tag)

    def needs(self) -> str | None:
        """The victim service the step talks to (the scenario checks the victim runs it)."""
        return self.service

    def spoofed(self) -> list[str]:
        """Source addresses the step forges (ground truth names them as the attacker's too)."""
        return []

    def command(self, ctx: StepContext) -> list[str]:
        raise NotImplementedError

    def client(self, ctx: StepContext, **args: object) -> list[str]:
        """argv of a behaviour of lab/clients.py, bounded by the step's duration."""
        import json

        payload = {"target": ctx.target_address, "seed": ctx.seed, "duration": self.duration, "site": str(ctx.site)}
        payload.update(args)
        return [*ctx.python, self.tool, json.dumps(payload, sort_keys=True)]


class AttackStep(Step, kw_only=True):
    role: ClassVar[Role] = "attack"


class BenignStep(Step, kw_only=True):
    role: ClassVar[Role] = "benign"


PORTS = r"^[0-9]{1,5}(-[0-9]{1,5})?(,[0-9]{1,5}(-[0-9]{1,5})?)*$"
USER = r"^[a-z_][a-z0-9_-]{0,31}$"


def check_ports(spec: str) -> None:
    """A port list (`PORTS`) whose ports lie in 1..65535 and whose ranges run upwards."""
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        a, b = int(lo), int(hi or lo)
        if not 1 <= a <= b <= 65535:
            raise Invalid("ports", f"{part!r}: expected ports 1-65535, a range low-high")
