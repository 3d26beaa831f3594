"""The lab's own error: one line a user can act on."""

from __future__ import annotations

from jenga_edge.contract.errors import JengaError


class LabError(JengaError):
    """A lab run cannot start or went wrong: missing tool, unsafe host, bad scenario."""
