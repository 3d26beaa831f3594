"""Task kinds: what a task's graph outputs, and how the edge reads it.

One definition per kind. The exporter writes each task's outputs into the
bundle manifest with their *role*; the agent reads scores by role, never by
guessing from an output's name. The trainer's half of a kind (head, loss,
metrics, labels) lives in trainer/task_kinds.py under the same name.

Roles:

* ``score``          float32 [batch]            P(threat) of a binary task;
* ``probabilities``  float32 [batch, classes]   class probabilities;
* ``label``          int64 [batch]              the most probable class.

A task's score (what rules compare with a threshold and alerts report) is its
``score`` output, or the largest of its ``probabilities``; its label, where it
has one, is its ``label`` output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from .errors import SchemaError

if TYPE_CHECKING:
    import numpy.typing as npt

Role = Literal["score", "probabilities", "label"]
ROLES: tuple[Role, ...] = ("score", "probabilities", "label")


@dataclass(frozen=True)
class Output:
    """One graph output of a kind: its role, dtype, and whether it has a class axis."""

    role: Role
    dtype: Literal["float32", "int64"]
    per_class: bool = False

    def shape(self, n_classes: int) -> list[str | int]:
        return ["batch", n_classes] if self.per_class else ["batch"]


@dataclass(frozen=True)
class TaskKind:
    """What the bundle promises about a kind of task.

    `binary`: two classes (normal, threat) and a tuned threshold on the score;
    otherwise the task names a class, and rules alert on chosen labels.
    """

    name: str
    description: str
    binary: bool
    modes: tuple[str, ...]
    outputs: tuple[Output, ...]

    def output_names(self, prefix: str = "") -> list[str]:
        """Graph output names: the roles, prefixed with "<task>." in a merged graph."""
        return [prefix + o.role for o in self.outputs]

    def output_specs(self, n_classes: int, prefix: str = "") -> list[dict[str, object]]:
        """The manifest's `outputs` of one task."""
        return [
            {"name": prefix + o.role, "role": o.role, "dtype": o.dtype, "shape": o.shape(n_classes)}
            for o in self.outputs
        ]


ANOMALY_DETECTION = TaskKind(
    "anomaly_detection",
    "binary: is this event a threat? (supervised; novelty: learned from normal rows only; distance: "
    "from normal rows in the trunk's space; fused: one calibrated score from other binary tasks of the source)",
    binary=True,
    modes=("supervised", "novelty", "distance", "fused"),
    outputs=(Output("score", "float32"),),
)

CLASSIFICATION = TaskKind(
    "classification",
    "multiclass: which class is this event? (e.g. the attack type)",
    binary=False,
    modes=("supervised",),
    outputs=(Output("probabilities", "float32", per_class=True), Output("label", "int64")),
)

TASK_KINDS: dict[str, TaskKind] = {k.name: k for k in (ANOMALY_DETECTION, CLASSIFICATION)}
TASK_KIND_NAMES = tuple(TASK_KINDS)


def task_kind(name: str) -> TaskKind:
    """The kind called `name`; SchemaError naming the known ones otherwise."""
    try:
        return TASK_KINDS[name]
    except (KeyError, TypeError):
        raise SchemaError(f"task type {name!r} is not known to this version (known: {', '.join(TASK_KINDS)})") from None


def read_outputs(
    by_role: Mapping[str, npt.NDArray[Any]],
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64] | None]:
    """(score, label or None) of one task from its outputs keyed by role."""
    score = by_role.get("score")
    if score is None:
        probabilities = by_role["probabilities"]
        score = probabilities.max(axis=1) if len(probabilities) else np.empty(0, np.float32)
    return score, by_role.get("label")
