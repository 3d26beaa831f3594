"""jenga-edge firewall init: create the nftables table, sets and drop rules (or ipsets)
the config's firewall actions add to. Idempotent; a dry-run action prints what it would run."""

from __future__ import annotations

import shlex

import click

from ..contract.cli import config_option, set_option
from ..contract.errors import ActionError, ConfigError


@click.group()
def firewall() -> None:
    """Set up what the firewall actions need."""


@firewall.command()
@config_option("Agent config file whose firewall actions to set up.")
@set_option()
@click.option("--dry-run", is_flag=True, help="Print the commands without running them, whatever the config says.")
def init(config_path: str, overrides: tuple[str, ...], dry_run: bool) -> None:
    """Create the table, sets and drop rules of every firewall action (idempotent).

    Honours each action's dry_run: a dry-run action prints the commands it
    would run. Only the actions' own table (nftables) or sets (ipset) change.
    """
    import msgspec

    from ..actions.firewall import Config, FirewallAction, check_live
    from ..config import load_agent_config

    cfg = load_agent_config(config_path, overrides)
    found = {name: c for name, c in cfg.actions.items() if isinstance(c, Config)}
    if not found:
        raise ConfigError(f"{config_path}: no firewall action to set up (actions: {', '.join(cfg.actions) or 'none'})")
    for name, c in found.items():
        if dry_run:
            c = msgspec.structs.replace(c, dry_run=True)
        try:
            check_live(name, c)
        except ActionError as exc:
            raise ActionError(f"{config_path}: {exc}") from None
        for out in FirewallAction(c).init():
            shown = shlex.join(out["argv"])  # for reading only: nothing here goes through a shell
            if out["result"] == "failed":
                raise ActionError(f"{config_path}: actions.{name}: {shown}: {out['reason']}")
            click.echo(f"{name}: {'would run' if out['result'] == 'dry_run' else 'ok'}: {shown}")
