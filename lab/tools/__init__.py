"""The tools a scenario step can run: one module each, one line here."""

from __future__ import annotations

from typing import Any, Union

from . import benign, hping3, hydra, iodine, masscan, nmap, slowloris
from .base import Step, StepContext

STEPS: tuple[type[Step], ...] = (
    benign.Web, benign.Dns, benign.Ssh, benign.Ftp, benign.Machine, benign.Chatter,
    nmap.Step, masscan.Step, hping3.Step, hydra.Step, slowloris.Step, iodine.Step,
)  # fmt: skip

BY_TOOL: dict[str, type[Step]] = {str(s.__struct_config__.tag): s for s in STEPS}
AnyStep: Any = Union[STEPS]  # noqa: UP007 (a Union built from a tuple)

__all__ = ["BY_TOOL", "STEPS", "AnyStep", "Step", "StepContext"]
