"""Standard alert formats: an alert as Elastic Common Schema, OCSF or ArcSight CEF.

A sink's `format:` picks one: ``native`` (the alert as the agent writes it, unchanged, the
default), ``ecs`` (ECS 8.x, ecs.py), ``ocsf`` (an OCSF 1.x Detection Finding, ocsf.py) or
``cef`` (one ArcSight CEF line, cef.py: for syslog). Each format is one module with
``convert(alert)``; a new one is a module here and its name in `MODULES`. Modules are imported
when a sink first asks for them, so an agent that writes native alerts loads none.

A converter reads only the keys it knows, tolerates missing or odd ones, and never raises on
what an event put in an alert (a sink would lose the batch): a value the target format cannot
hold in a typed field (an address that is not an IP, a port that is not a number) goes to a
text field or is left out. common.py has what the formats share (severity scales, ATT&CK ids
from rule tags, the DNS name of a text alert, the model reference).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Literal

#: format name -> module in this package (registry: one line per format).
MODULES = {"ecs": "ecs", "ocsf": "ocsf", "cef": "cef"}

JsonFormat = Literal["native", "ecs", "ocsf"]  # what a JSON sink (jsonl, stdout) writes
SyslogFormat = Literal["native", "ecs", "ocsf", "cef"]  # the MSG of a syslog message
JSON_FORMATS: tuple[str, ...] = ("ecs", "ocsf")


def converter(name: str) -> Callable[[dict[str, Any]], Any] | None:
    """The `convert` of format `name` (a dict for ecs and ocsf, a str for cef); None for native."""
    if name == "native":
        return None
    module = importlib.import_module(f".{MODULES[name]}", __name__)
    convert: Callable[[dict[str, Any]], Any] = module.convert
    return convert


__all__ = ["JSON_FORMATS", "MODULES", "JsonFormat", "SyslogFormat", "converter"]
