"""onnxruntime sessions for a verified bundle, and micro-batch scoring.

Sessions are created only from a Bundle returned by verify_bundle, from the
very bytes whose sha256 it checked (never by path), so no graph reaches
onnxruntime unverified. Each session's inputs and outputs are then checked
against the manifest (names, dtypes, the schema's widths), and one all-zero
event is scored, before the agent starts or a reload swaps models. When a
merged graph covers two or more of the tasks the agent runs, it scores them
(the adapter and trunk run once per event) and the others, such as a
tree-model task, run their own graphs.

A schema with text features adds `text_bytes` and `text_lengths` to the feed (the
trial event holds an empty text), the bytes axis trimmed to the batch's longest
text: the graph masks past each length, so the scores are those of the full width,
at a fraction of the work for short names. Such a batch is scored in runs of
`runtime.text_run_events` events (48), taken in order of text length and each trimmed
to its own longest text: the text graph's intermediates are [events, bytes, channels]
floats, so the run size bounds what onnxruntime's arena holds (128-name runs held the
DNS agent's peak RSS 4-5 MB higher), and runs of like lengths pad far less than the
batch trimmed to its one longest name, which pays for the extra runs (bench/README.md).

Session options: one thread each way, sequential, the CPU arena on, and onnxruntime's
memory pattern off: it plans and caches one block per input shape, which pays for fixed
shapes, while the agent's batch sizes and trimmed widths vary from batch to batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np

from . import ort_loader
from .bundle import Bundle
from .contract.bundle_format import MergedEntry, TaskEntry, TensorSpec
from .contract.errors import BundleError, ConfigError
from .contract.schema import FeatureSchema
from .contract.tasks import read_outputs
from .contract.typed import Config, doc

if TYPE_CHECKING:
    import numpy.typing as npt
    import onnxruntime as ort

_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
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
    memory_pattern: Annotated[
        bool,
        doc(
            "onnxruntime's memory pattern (one planned block per input shape, cached per shape): "
            "it pays for fixed shapes; the agent's batch sizes and trimmed text widths vary"
        ),
    ] = False
    cpu_arena: Annotated[bool, doc("onnxruntime's CPU memory arena (off: each run's tensors come from malloc)")] = True
    text_run_events: Annotated[
        int,
        doc(
            "a schema with text features: events per onnxruntime run at most (a micro-batch is scored in "
            "runs of like text lengths, each trimmed to its own longest text; the text graph's "
            "intermediates, and so the agent's memory, grow with the run); 0: the whole micro-batch",
            ge=0,
            le=65536,
        ),
    ] = 48


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
        rt = ort_loader.load()  # not at import: ort_loader.py says why
        opts = rt.SessionOptions()
        opts.intra_op_num_threads = cfg.intra_op_threads
        opts.inter_op_num_threads = cfg.inter_op_threads
        opts.graph_optimization_level = getattr(rt.GraphOptimizationLevel, _LEVELS[cfg.graph_optimization])
        opts.execution_mode = rt.ExecutionMode.ORT_SEQUENTIAL  # one inter-op thread: no pool either way
        opts.enable_mem_pattern = cfg.memory_pattern
        opts.enable_cpu_mem_arena = cfg.cpu_arena
        self.text_run_events = cfg.text_run_events if self.schema.text else 0
        merged = self._merged_for(self.tasks) if cfg.use_merged_graph else None
        inputs = self.entries[0].inputs  # one schema: every graph of these tasks takes the same inputs
        # Per session: the output names to fetch, and (task, role) for each.
        self.plan: list[tuple[ort.InferenceSession, list[str], list[tuple[str, str]]]] = []
        # Per task: the graph that scores it, as alerts cite it.
        self.graph_refs: dict[str, dict[str, str]] = {}
        if merged is not None:
            session = self._session(merged.file, opts)
            check_graph_io(session, merged.file, inputs, [o for t in merged.tasks for o in merged.outputs[t]])
            outs = [(t, o) for t in self.tasks if t in merged.tasks for o in merged.outputs[t]]
            self.plan.append((session, [o.name for _, o in outs], [(t, str(o.role)) for t, o in outs]))
            self.graph_refs = {t: {"file": merged.file, "sha256": merged.sha256} for t, _ in outs}
        # Tasks the merged graph does not cover (a tree-model task has a graph of its own) run theirs.
        for e in self.entries:
            if e.name not in self.graph_refs:
                session = self._session(e.file, opts)
                check_graph_io(session, e.file, e.inputs, e.outputs)
                self.plan.append((session, [o.name for o in e.outputs], [(e.name, str(o.role)) for o in e.outputs]))
                self.graph_refs[e.name] = {"file": e.file, "sha256": e.sha256}
        self.merged = merged is not None
        self._trial()

    def _trial(self) -> None:
        """Score one all-zero event before the agent starts (or a reload swaps models):
        a graph that loads but cannot run, or answers in the wrong shape, is refused
        here rather than failing every batch later."""
        num = np.zeros((1, len(self.schema.numeric)), np.float32)
        cat = np.zeros((1, len(self.schema.categorical)), np.int64)
        t = len(self.schema.text)
        text, text_len = np.zeros((1, t, self.schema.text_width), np.uint8), np.zeros((1, t), np.int64)
        try:
            scores = self.score(num, cat, text, text_len)
            bad = [t for t in self.tasks if np.shape(scores.score[t]) != (1,)]
            bad += [t for t, lab in scores.label.items() if np.shape(lab) != (1,)]
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises several unrelated types for a bad graph
            raise BundleError(
                f"the bundle's graphs cannot score one event: {type(exc).__name__}: {str(exc)[:300]}"
            ) from None
        if bad:
            raise BundleError(f"the bundle's graphs cannot score one event: {', '.join(bad)}: not one value per event")

    def _merged_for(self, tasks: list[str]) -> MergedEntry | None:
        """A merged graph pays off from two of the tasks on: for one, its own graph is cheaper.
        The one covering the most of them is used; the others run their own graphs."""
        best = max(self.bundle.merged, key=lambda m: len(set(tasks) & set(m.tasks)), default=None)
        return best if best is not None and len(set(tasks) & set(best.tasks)) >= 2 else None

    def _session(self, file: str, opts: ort.SessionOptions) -> ort.InferenceSession:
        """A session from the graph's verified bytes: the file is not opened again."""
        try:
            return ort_loader.load().InferenceSession(self.bundle.graph(file), opts, providers=["CPUExecutionProvider"])
        except BundleError:
            raise
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises several unrelated types for a bad graph
            raise BundleError(
                f"onnxruntime could not load the bundle's graph {file}: {type(exc).__name__}: {str(exc)[:300]}"
            ) from None

    def score(
        self,
        num: npt.NDArray[np.float32],
        cat: npt.NDArray[np.int64],
        text: npt.NDArray[np.uint8] | None = None,
        text_len: npt.NDArray[np.int64] | None = None,
    ) -> Scores:
        """Each task's score (and label, for kinds that name a class), read by output role.
        `text`, `text_len`: the text block (DecodedBatch.text, .text_len), for a schema
        with text features."""
        if len(num) == 0:
            return Scores(
                {t: np.empty(0, np.float32) for t in self.tasks},
                {e.name: np.empty(0, np.int64) for e in self.entries if _labelled(e)},
            )
        if self.schema.text and (text is None or text_len is None):
            text_names = ", ".join(f.name for f in self.schema.text)
            raise ValueError(f"the schema has text features ({text_names}): score() needs text and text_len")
        # Text graphs run in slices (the module docstring says why).
        step = self.text_run_events or len(num)
        if len(num) <= step or text is None or text_len is None:
            by_task = self._run(num, cat, text, text_len)
        else:
            by_task = self._run_sliced(num, cat, text, text_len, step)
        score: dict[str, npt.NDArray[np.float32]] = {}
        label: dict[str, npt.NDArray[np.int64]] = {}
        for task, outputs in by_task.items():
            score[task], lab = read_outputs(outputs)
            if lab is not None:
                label[task] = lab
        return Scores(score, label)

    def _run_sliced(
        self,
        num: npt.NDArray[np.float32],
        cat: npt.NDArray[np.int64],
        text: npt.NDArray[np.uint8],
        text_len: npt.NDArray[np.int64],
        step: int,
    ) -> dict[str, dict[str, npt.NDArray[Any]]]:
        """Runs of `step` events taken in order of text length, so that each run is trimmed
        close to its own names (a batch's one long name no longer widens every short one);
        the outputs are put back in the batch's order."""
        order = np.argsort(text_len.max(axis=1), kind="stable")
        parts = []
        for i in range(0, len(num), step):
            rows = order[i : i + step]
            parts.append(self._run(num[rows], cat[rows], text[rows], text_len[rows]))
        by_task: dict[str, dict[str, npt.NDArray[Any]]] = {}
        for task, outputs in parts[0].items():
            by_task[task] = {}
            for role in outputs:
                joined = np.concatenate([p[task][role] for p in parts])
                back = np.empty_like(joined)
                back[order] = joined
                by_task[task][role] = back
        return by_task

    def _run(
        self,
        num: npt.NDArray[np.float32],
        cat: npt.NDArray[np.int64],
        text: npt.NDArray[np.uint8] | None,
        text_len: npt.NDArray[np.int64] | None,
    ) -> dict[str, dict[str, npt.NDArray[Any]]]:
        """Every session of the plan on one feed: per task, its outputs by role."""
        feed: dict[str, npt.NDArray[Any]] = {"numeric": num, "categorical": cat}
        if text is not None and text_len is not None and self.schema.text:
            feed["text_bytes"], feed["text_lengths"] = trim_text(text, text_len)
        by_task: dict[str, dict[str, npt.NDArray[Any]]] = {t: {} for t in self.tasks}
        for session, names, outs in self.plan:
            for (task, role), value in zip(outs, session.run(names, feed)):
                by_task[task][role] = value
        return by_task


def trim_text(
    text: npt.NDArray[np.uint8], text_len: npt.NDArray[np.int64]
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    """The bytes axis cut to the batch's longest text (at least 1: a graph cannot take an
    empty axis), contiguous as onnxruntime wants it; bytes past a length are padding the
    graph masks, so the scores do not change (contract/schema.py)."""
    width = max(1, int(text_len.max(initial=0)))
    if width < text.shape[2]:
        text = np.ascontiguousarray(text[:, :, :width])
    return text, text_len


_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(int64)": "int64",
    "tensor(double)": "float64",
    "tensor(uint8)": "uint8",
}


def check_graph_io(
    session: ort.InferenceSession, file: str, inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec]
) -> None:
    """The graph must take exactly the manifest's inputs (names, dtypes, a free batch axis, the
    schema's widths) and give its outputs: another model's graph whose sha256 was written into
    the manifest loads fine and then fails every batch (or scores the wrong features)."""
    got_in = {i.name: i for i in session.get_inputs()}
    if set(got_in) != {i.name for i in inputs}:
        raise BundleError(
            f"{file}: the graph's inputs are {', '.join(sorted(got_in)) or 'none'}; "
            f"the manifest says {', '.join(i.name for i in inputs)}"
        )
    for spec in inputs:
        _check_tensor(file, "input", got_in[spec.name], spec, require_shape=True)
    got_out = {o.name: o for o in session.get_outputs()}
    missing = [o.name for o in outputs if o.name not in got_out]
    extra = sorted(set(got_out) - {o.name for o in outputs})
    if missing or extra:
        raise BundleError(
            f"{file}: output {(missing or extra)[0]!r} is "
            + ("in the manifest but not in the graph" if missing else "in the graph but not in the manifest")
        )
    for spec in outputs:
        _check_tensor(file, "output", got_out[spec.name], spec, require_shape=False)


def _check_tensor(file: str, what: str, node: Any, spec: TensorSpec, require_shape: bool) -> None:
    dtype = _ORT_TYPES.get(node.type, node.type)
    if dtype != spec.dtype:
        raise BundleError(f"{file}: {what} {spec.name!r} is {dtype}; the manifest says {spec.dtype}")
    shape = node.shape
    if not shape and not require_shape:
        return  # an output of unknown shape: the trial score checks what it gives
    if shape is None or not _shape_fits(list(shape), spec.shape):
        raise BundleError(
            f"{file}: {what} {spec.name!r} has shape {_show(shape)}; the manifest says {_show(spec.shape)}"
        )


def _shape_fits(got: list[Any], want: list[Any]) -> bool:
    """Same rank; the batch axis and a text `bytes` axis free (not a fixed size: the agent
    trims it per batch); every fixed width equal."""
    if len(got) != len(want) or isinstance(got[0], int):
        return False
    return all(
        g == w if isinstance(w, int) else not (w == "bytes" and isinstance(g, int)) for g, w in zip(got[1:], want[1:])
    )


def _show(shape: Any) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]" if shape is not None else "unknown"


def _labelled(entry: TaskEntry) -> bool:
    return any(o.role == "label" for o in entry.kind.outputs)
