"""One-off threat checks from a shell: score events, explain, set the exit code.

Exit status: 0 nothing found, 1 a threat was found, 2 bad usage or unreadable
input (including events that could not be scored when nothing was found).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .bundle import Bundle
from .contract.events import Derived, Normalizer
from .contract.schema import OOV_INDEX
from .contract.windows import Window
from .decode import EventDecoder
from .score import Scorer, select_tasks

if TYPE_CHECKING:
    import numpy.typing as npt

EXIT_CLEAN, EXIT_THREAT, EXIT_BAD = 0, 1, 2
FILTERED = "filtered"  # an EventResult's reason when the event model's filter set the event aside


@dataclass
class TaskVerdict:
    task: str
    score: float
    threshold: float | None
    verdict: str  # "threat" | "normal" | a class label
    threat: bool
    top_fields: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class EventResult:
    event: int
    ok: bool
    tasks: list[TaskVerdict] = field(default_factory=list)
    reason: str | None = None
    field: str | None = None
    message: str | None = None
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        if not self.ok:
            return {
                "event": self.event,
                "ok": False,
                "reason": self.reason,
                "field": self.field,
                "message": self.message,
            }
        out = {
            "event": self.event,
            "ok": True,
            "threat": any(t.threat for t in self.tasks),
            "tasks": {
                t.task: {
                    "score": round(t.score, 6),
                    "threshold": t.threshold,
                    "verdict": t.verdict,
                    "top_fields": [{"field": f, "contribution": round(c, 6)} for f, c in t.top_fields],
                }
                for t in self.tasks
            },
        }
        if self.note:
            out["note"] = self.note
        return out


def pick_tasks(bundle: Bundle, first_event_keys: Sequence[str], wanted: Sequence[str] | None) -> list[str]:
    """Explicit tasks, else the tasks of the schema that best fits the event's fields."""
    if wanted:
        return [e.name for e in select_tasks(bundle, wanted, where="--tasks")]
    groups: dict[str, list[str]] = {}
    for t in bundle.tasks.values():
        groups.setdefault(t.schema.sha256, []).append(t.name)
    keys = set(first_event_keys)
    best = max(groups.values(), key=lambda names: len(keys & set(bundle.tasks[names[0]].schema.names)))
    return best


def check_lines(
    bundle: Bundle,
    lines: list[bytes],
    tasks: Sequence[str] | None = None,
    explain: int = 3,
    mapping: dict[str, str | list[str]] | None = None,
    min_present: int = 1,
    where: dict[str, Any] | None = None,
    normalize: dict[str, Normalizer] | None = None,
    time: str | None = None,
    windows: dict[str, Window] | None = None,
    limits: dict[str, Any] | None = None,
    derive_fields: dict[str, Derived] | None = None,
) -> list[EventResult]:
    """`mapping`, `where` and `normalize` (an agent config's event section) let an
    analyst check raw records such as Suricata eve.json the way the agent would
    score them; `min_present` (event.min_present) rejects events with fewer of the
    schema's fields; `derive_fields` (the config's event.derive, for its rules) is computed as the
    agent computes it for a rule that reads it: an input it cannot read rejects the event."""
    first = _first_keys(lines)
    if mapping:
        first = [*first, *mapping]  # mapped names count as present for picking the schema
    names = pick_tasks(bundle, first, tasks)
    scorer = Scorer(bundle, names)
    decoder = EventDecoder(
        scorer.schema,
        mapping,
        key_fields=list(derive_fields or {}),
        min_present=min_present,
        where=where,
        normalize=normalize,
        time=time,
        windows=windows,
        limits=limits,
        derive_fields=derive_fields,
    )
    batch = decoder.decode(lines)  # window features run over the lines in file order
    results: dict[int, EventResult] = {
        r.index: EventResult(r.index + 1, False, reason=r.reason, field=r.field, message=r.message)
        for r in batch.rejects
    }
    conditions = ", ".join(f"{k}: {v}" for k, v in decoder.model.where.items())
    for i in batch.filtered:
        results[i] = EventResult(
            i + 1, False, reason=FILTERED, message=f"not a record this model scores (where {conditions})"
        )
    scores = scorer.score(batch.num, batch.cat, batch.text, batch.text_len)
    for row, i in enumerate(batch.index):
        verdicts = []
        for t in names:
            entry = bundle.tasks[t]
            s = float(scores.score[t][row])
            if not entry.kind.binary:
                label = entry.labels[int(scores.label[t][row])]
                verdicts.append(TaskVerdict(t, s, None, label, False))
            else:
                thr = entry.threshold if entry.threshold is not None else 0.5
                verdicts.append(TaskVerdict(t, s, thr, "threat" if s >= thr else "normal", s >= thr))
        if explain:
            _explain(scorer, (batch.num[row], batch.cat[row], batch.text[row], batch.text_len[row]), verdicts, explain)
        results[i] = EventResult(i + 1, True, verdicts)
    if scorer.schema.events is not None and scorer.schema.events.windows and len(lines) == 1 and batch.index:
        results[batch.index[0]].note = "window features saw a first-seen key (one event has no history; check a file)"
    return [results[i] for i in sorted(results)]


def _first_keys(lines: list[bytes]) -> list[str]:
    import json

    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            return list(obj)
    return []


def _explain(scorer: Scorer, row: tuple[npt.NDArray[Any], ...], verdicts: list[TaskVerdict], top: int) -> None:
    """Occlusion: how much each field's value raises the score compared with the
    same event with that field missing (a text: empty). One batch of n+m+t rows
    per event: cheap. `row`: the event's numeric, categorical, text and text_len."""
    schema = scorer.schema
    num, cat, text, text_len = row
    n, m, t = len(num), len(cat), len(text_len)
    k = n + m + t
    nums = np.repeat(num[None, :], k, axis=0)
    cats = np.repeat(cat[None, :], k, axis=0)
    texts = np.repeat(text[None], k, axis=0)
    lens = np.repeat(text_len[None, :], k, axis=0)
    nums[np.arange(n), np.arange(n)] = np.nan
    cats[n + np.arange(m), np.arange(m)] = OOV_INDEX
    texts[n + m + np.arange(t), np.arange(t)] = 0
    lens[n + m + np.arange(t), np.arange(t)] = 0
    occluded = scorer.score(nums, cats, texts, lens)
    names = [f.name for f in (*schema.numeric, *schema.categorical, *schema.text)]
    for v in verdicts:
        if not scorer.bundle.tasks[v.task].kind.binary:
            continue
        # In log-odds: a saturated score (0.9999) still shows which fields hold it up.
        contrib = _logit(v.score) - _logit(occluded.score[v.task])
        order = np.argsort(-contrib)[:top]
        v.top_fields = [(names[j], float(contrib[j])) for j in order if contrib[j] > 0]


def _logit(p: npt.ArrayLike) -> npt.NDArray[np.float64]:
    q = np.clip(np.asarray(p, dtype=np.float64), 1e-7, 1 - 1e-7)
    return np.log(q) - np.log1p(-q)


def exit_code(results: list[EventResult]) -> int:
    if any(t.threat for r in results for t in r.tasks):
        return EXIT_THREAT
    if not results or any(not r.ok and r.reason != FILTERED for r in results):
        return EXIT_BAD
    return EXIT_CLEAN


def render(results: list[EventResult]) -> str:
    lines = []
    for r in results:
        if r.reason == FILTERED:
            lines.append(f"event {r.event}: filtered: {r.message}")
            continue
        if not r.ok:
            lines.append(
                f"event {r.event}: REJECTED {r.reason}" + (f" ({r.field})" if r.field else "") + f": {r.message}"
            )
            continue
        head = "THREAT" if any(t.threat for t in r.tasks) else "clean"
        lines.append(f"event {r.event}: {head}" + (f" (note: {r.note})" if r.note else ""))
        for t in r.tasks:
            if t.threshold is None:
                lines.append(f"  {t.task:<16} {t.verdict} (p={t.score:.3f})")
                continue
            cmp = ">=" if t.threat else "<"
            why = ", ".join(f"{f} +{c:.2f}" for f, c in t.top_fields)
            lines.append(
                f"  {t.task:<16} score {t.score:.3f} {cmp} {t.threshold:.3f}  {t.verdict}"
                + (f"  top fields (log-odds): {why}" if why and t.threat else "")
            )
    return "\n".join(lines)
