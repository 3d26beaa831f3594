"""What the agent does about an alert: block the source, run a command, notify.

One module per kind (firewall, exec, webhook), each with its `Config` (`type:
<kind>` in the agent config's `actions:` mapping, where the name may stand for
the type) and `build`; base.py has the `Action` protocol and what the kinds
share. A new kind is a module here and its name in the list below
(jenga_edge/kinds.py). Rules name actions by their key in the mapping.

Firewall and exec actions default to ``dry_run: true``: they record the exact
argv they would run until an operator turns that off.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..kinds import Kinds
from . import exec, firewall, webhook
from .background import BackgroundAction
from .base import Action, ActionConfig, ActionContext

KINDS: Kinds[Action] = Kinds("action", [firewall, exec, webhook])


def build_actions(
    configs: dict[str, ActionConfig], on_result: Callable[[str, dict[str, Any]], None] | None = None
) -> dict[str, Action]:
    """The configured actions by name; a slow one (a webhook) runs on its own worker thread,
    which hands each final outcome to `on_result(name, outcome)`."""
    actions: dict[str, Action] = {}
    for name, cfg in configs.items():
        action = KINDS.build(cfg, ActionContext(name=name))
        actions[name] = BackgroundAction(name, action, on_result=on_result) if action.slow else action
    return actions


def close_actions(actions: dict[str, Action]) -> None:
    """Let background workers finish (or spool) what they hold."""
    for action in actions.values():
        if isinstance(action, BackgroundAction):
            action.close()


__all__ = ["KINDS", "Action", "ActionConfig", "build_actions", "close_actions"]
