"""onnxruntime, imported in one place and only when it is needed.

Loading a config does not need it (the --workers supervisor and `validate --no-bundle`
never score, and the import costs ~20 MB of RSS), so the bundle check and the scorer
import it through `load()` when they first use it. onnxruntime (1.29 on, Linux too)
uploads usage telemetry and keeps a device id and an offline event cache under
~/.cache/Microsoft unless ORT_DISABLE_TELEMETRY is set before it is imported: the agent
makes no connection its config does not name (and saves 2.4 MB of RSS and a thread). A
value the operator set is kept.
"""

from __future__ import annotations

import os
from typing import Any


def load() -> Any:
    """The onnxruntime module, telemetry off unless the environment says otherwise."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
    import onnxruntime

    return onnxruntime
