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

from ..kinds import Kinds
from . import exec, firewall, webhook
from .background import BackgroundAction, OnResult
from .base import Action, ActionConfig, ActionContext

KINDS: Kinds[Action] = Kinds("action", [firewall, exec, webhook])


def build_actions(configs: dict[str, ActionConfig], on_result: OnResult | None = None) -> dict[str, Action]:
    """The configured actions by name; one that can block (a webhook, a live exec or
    firewall) runs behind its output queue and worker (background.py), which hands each
    final outcome to `on_result(name, alert, outcome)`."""
    actions: dict[str, Action] = {}
    try:
        for name, cfg in configs.items():
            action = KINDS.build(cfg, ActionContext(name=name))
            actions[name] = BackgroundAction(name, action, cfg.queue, on_result) if action.slow else action
    except BaseException:
        close_actions(actions, 0.0)
        raise
    return actions


def unwrap(action: Action) -> Action:
    """The action itself, whether or not it runs behind an output queue."""
    return action.action if isinstance(action, BackgroundAction) else action


def close_actions(actions: dict[str, Action], deadline_s: float | None = None) -> None:
    """Let background workers finish (or spool, or drop, each with its outcome) what they
    hold, within each queue's drain_s (or `deadline_s`)."""
    for action in actions.values():
        if isinstance(action, BackgroundAction):
            action.close(deadline_s)


__all__ = ["KINDS", "Action", "ActionConfig", "BackgroundAction", "build_actions", "close_actions", "unwrap"]
