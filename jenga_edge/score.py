"""onnxruntime sessions for a verified bundle, and micro-batch scoring.

Sessions are created only from a Bundle returned by verify_bundle, so no graph
reaches onnxruntime before its sha256 has been checked. When a merged graph
covers every task the agent runs, it is used instead of the per-task graphs:
the adapter and trunk then run once per event.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
import onnxruntime as ort

from .bundle import Bundle
from .contract.bundle_format import MergedEntry, TaskEntry
from .contract.errors import BundleError, ConfigError
from .contract.schema import FeatureSchema
from .contract.tasks import read_outputs
from .contract.typed import Config, doc

if TYPE_CHECKING:
    import numpy.typing as npt

_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


class RuntimeConfig(Config, kw_only=True):
    """onnxruntime settings. One intra-op thread by default: on a two-core
    gateway the two-thread pool collapsed when another process held a core."""

    intra_op_threads: Annotated[int, doc("threads inside one operator", ge=1, le=256)] = 1
    inter_op_threads: Annotated[int, doc("operators run in parallel", ge=1, le=256)] = 1
    graph_optimization: Annotated[
        Literal["disable", "basic", "extended", "all"], doc("onnxruntime graph optimization level")
    ] = "all"
    use_merged_graph: Annotated[
        bool, doc("score all tasks of one schema with the bundle's merged graph (the trunk runs once)")
    ] = True


@dataclass
class Scores:
    """Per task: `score` [n] (binary: P(threat); multiclass: P(predicted label))
    and, for multiclass, `label` [n] class indices."""

    score: dict[str, npt.NDArray[np.float32]]
    label: dict[str, npt.NDArray[np.int64]]


def select_tasks(bundle: Bundle, wanted: Sequence[str] | None, where: str = "agent.tasks") -> list[TaskEntry]:
    """The bundle's entries for `wanted` (all tasks if none); `where` names the setting in errors."""
    names = list(wanted) if wanted else list(bundle.tasks)
    unknown = [n for n in names if n not in bundle.tasks]
    if unknown:
        raise ConfigError(
            f"{where}: {', '.join(unknown)} not in bundle {bundle.bundle_id} (it has: {', '.join(bundle.tasks)})"
        )
    entries = [bundle.tasks[n] for n in names]
    shas = {e.schema.sha256 for e in entries}
    if len(shas) > 1:
        raise ConfigError(
            f"{where}: an agent scores one event stream, so its tasks must share one feature "
            f"schema; {', '.join(f'{e.name} ({e.source})' for e in entries)} do not"
        )
    return entries


class Scorer:
    def __init__(
        self,
        bundle: Bundle,
        tasks: Sequence[str] | None = None,
        cfg: RuntimeConfig | None = None,
        where: str = "agent.tasks",
    ):
        cfg = cfg or RuntimeConfig()
        self.bundle, self.entries = bundle, select_tasks(bundle, tasks, where)
        self.schema: FeatureSchema = self.entries[0].schema
        self.tasks = [e.name for e in self.entries]
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = cfg.intra_op_threads
        opts.inter_op_num_threads = cfg.inter_op_threads
        opts.graph_optimization_level = _LEVELS[cfg.graph_optimization]
        merged = self._merged_for(self.tasks) if cfg.use_merged_graph else None
        # Per session: the output names to fetch, and (task, role) for each.
        self.plan: list[tuple[ort.InferenceSession, list[str], list[tuple[str, str]]]] = []
        try:
            if merged is not None:
                outs = [(t, o) for t in self.tasks for o in merged.outputs[t]]
                self.plan.append(
                    (self._session(merged.file, opts), [o.name for _, o in outs], [(t, str(o.role)) for t, o in outs])
                )
            else:
                for e in self.entries:
                    self.plan.append(
                        (
                            self._session(e.file, opts),
                            [o.name for o in e.outputs],
                            [(e.name, str(o.role)) for o in e.outputs],
                        )
                    )
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises several unrelated types for a bad graph
            raise BundleError(
                f"onnxruntime could not load the bundle's graphs: {type(exc).__name__}: {str(exc)[:300]}"
            ) from None
        self.merged = merged is not None
        self._trial()

    def _trial(self) -> None:
        """Score one all-zero event before the agent starts (or a reload swaps models):
        a graph that loads but cannot run, or answers in the wrong shape, is refused
        here rather than failing every batch later."""
        num = np.zeros((1, len(self.schema.numeric)), np.float32)
        cat = np.zeros((1, len(self.schema.categorical)), np.int64)
        try:
            scores = self.score(num, cat)
            bad = [t for t in self.tasks if np.shape(scores.score[t]) != (1,)]
            bad += [t for t, lab in scores.label.items() if np.shape(lab) != (1,)]
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises several unrelated types for a bad graph
            raise BundleError(
                f"the bundle's graphs cannot score one event: {type(exc).__name__}: {str(exc)[:300]}"
            ) from None
        if bad:
            raise BundleError(f"the bundle's graphs cannot score one event: {', '.join(bad)}: not one value per event")

    def _merged_for(self, tasks: list[str]) -> MergedEntry | None:
        """A merged graph pays off from two tasks on: for one, its own graph is cheaper."""
        if len(tasks) < 2:
            return None
        for m in self.bundle.merged:
            if set(tasks) <= set(m.tasks):
                return m
        return None

    def _session(self, file: str, opts: ort.SessionOptions) -> ort.InferenceSession:
        return ort.InferenceSession(str(self.bundle.file(file)), opts, providers=["CPUExecutionProvider"])

    def score(self, num: npt.NDArray[np.float32], cat: npt.NDArray[np.int64]) -> Scores:
        """Each task's score (and label, for kinds that name a class), read by output role."""
        if len(num) == 0:
            return Scores(
                {t: np.empty(0, np.float32) for t in self.tasks},
                {e.name: np.empty(0, np.int64) for e in self.entries if _labelled(e)},
            )
        feed = {"numeric": num, "categorical": cat}
        by_task: dict[str, dict[str, npt.NDArray[Any]]] = {t: {} for t in self.tasks}
        for session, names, outs in self.plan:
            for (task, role), value in zip(outs, session.run(names, feed)):
                by_task[task][role] = value
        score: dict[str, npt.NDArray[np.float32]] = {}
        label: dict[str, npt.NDArray[np.int64]] = {}
        for task, outputs in by_task.items():
            score[task], lab = read_outputs(outputs)
            if lab is not None:
                label[task] = lab
        return Scores(score, label)


def _labelled(entry: TaskEntry) -> bool:
    return any(o.role == "label" for o in entry.kind.outputs)
