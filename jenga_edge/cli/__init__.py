"""jenga-edge: the gateway-side command (torch-free).

    jenga-edge run      --config FILE [--bundle DIR] [--set KEY=VALUE]   read, score, act
    jenga-edge validate --config FILE [--bundle DIR] [--no-bundle]       check a config and its bundle
    jenga-edge check    --bundle DIR (EVENT | -f FILE | -)              one-off threat checks
    jenga-edge inspect  --bundle DIR [--json]                            what a verified bundle holds
    jenga-edge alerts   --db FILE [--since 1h] [--priority error]        the local alert store
    jenga-edge firewall init --config FILE [--dry-run]                  create the blocklist sets and rules

Exit codes: 0 success; 1 check found a threat; 2 bad usage, config or input,
or a bundle that fails verification.
"""

from __future__ import annotations

import click

from ..contract.cli import JengaGroup, version_option
from .alerts import alerts
from .check import check
from .firewall import firewall
from .inspect import inspect
from .run import run, validate


@click.group(cls=JengaGroup)
@version_option("jenga-edge")
def main() -> None:
    """Score security events with a verified JengaAI bundle at the edge."""


for _command in (run, validate, check, inspect, alerts, firewall):
    main.add_command(_command)
