"""Sentinel rules: declarative, Falco-shaped, evaluated per micro-batch.

    rules:
      - rule: ssh_bruteforce_block
        desc: Block sources the network model scores as threats on admin ports.
        task: threat
        threshold: bundle            # the bundle's recommended threshold, or a number
        condition: {dest_port: [22, 3389]}
        priority: critical
        severity: [{min_score: 0.99, priority: critical}, {min_score: 0.9, priority: error}]
        key: src_ip                  # de-duplicate per key ...
        cooldown_s: 300              # ... for this long
        actions: [alert, firewall]
        output: "ssh brute force from %src_ip (score %score)"
        tags: [network, T1110]

Thresholds and conditions are numpy masks over the whole batch; only the rows
that pass them reach the per-alert Python code (cooldown, output).
"""

from __future__ import annotations

import bisect
import ipaddress
import re
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
import numpy as np

from .contract.bundle_format import TaskEntry
from .contract.conditions import Condition, check_macros
from .contract.errors import ConfigError
from .contract.schema import category_key
from .contract.text import escape_text
from .contract.typed import Config, Invalid, doc
from .contract.windows import Window, span
from .decode import DecodedBatch
from .priorities import Priority
from .score import Scores
from .warmup import WarmUp

if TYPE_CHECKING:
    import numpy.typing as npt

Scalar = str | int | float | bool
COOLDOWN_KEYS_MAX = 100_000
BUDGET_WINDOW_S = 60.0
WARMUP_MAX_S = 7 * 86400.0  # a window's longest span


class SeverityBand(Config, kw_only=True):
    """Alerts scoring at least `min_score` get `priority` (the highest band that applies wins)."""

    min_score: Annotated[float, doc("the lowest score of the band", ge=0.0, le=1.0)]
    priority: Annotated[Priority, doc("the priority of the band's alerts")] = "warning"


class MinMatches(Config, kw_only=True):
    """Corroboration: a key alerts only once it has matched the rule `count` times less than
    `within_s` seconds apart in event time (close to Suricata's `threshold: type both`)."""

    count: Annotated[int, doc("matches of the same key it takes, this one included", ge=2, le=100)]
    within_s: Annotated[
        float,
        doc(
            "less than this many seconds apart, first to last, in event time (the windows' clock; the "
            "agent's without windows)",
            gt=0.0,
            le=WARMUP_MAX_S,
        ),
    ]


class RuleConfig(Config, kw_only=True):
    """A sentinel rule: which scored events alert, how loud, how often, and what is done."""

    rule: Annotated[str, doc("the rule's name (unique): alerts carry it")]
    task: Annotated[
        str | None,
        doc("the bundle task whose scores the rule reads; none: a counting rule that alerts on its condition alone"),
    ] = None
    desc: Annotated[str, doc("what the rule is for")] = ""
    threshold: Annotated[
        Literal["bundle"] | float, doc("alert on scores at or above this; bundle: the threshold tuned at training")
    ] = "bundle"
    labels: Annotated[
        list[str] | None, doc("tasks that name a class (classification): the predicted classes that alert")
    ] = None
    condition: Annotated[
        dict[str, Any],
        doc(
            "event, derived and window fields that must also match: a value (eq), a list (in), or operators "
            "{eq, ne, in, not_in, gt, gte, lt, lte}, e.g. {dest_port: [22, 3389]}; and any/all/not/macro"
        ),
    ] = {}
    priority: Annotated[Priority, doc("the alert's priority (a syslog severity)")] = "warning"
    severity: Annotated[list[SeverityBand], doc("priorities by score, over `priority`")] = []
    key: Annotated[str | None, doc("the event field that identifies who alerts (for cooldown and actions)")] = None
    cooldown_s: Annotated[float, doc("after an alert, the same key is quiet this long (0: every event)", ge=0.0)] = 0.0
    max_alerts_per_min: Annotated[
        Annotated[int, msgspec.Meta(ge=1)] | None,
        doc(
            "at most this many alerts from the rule in any 60 s (after cooldowns): a flood from forged "
            "sources has a new key per event; the rest are counted in jenga_alerts_over_budget_total "
            "and logged, never raised"
        ),
    ] = None
    min_matches: Annotated[
        MinMatches | None,
        doc(
            "alert only when the same key has matched `count` times less than `within_s` s apart in event time "
            "(this match included; the windows' clock, the agent's without windows), e.g. {count: 2, "
            "within_s: 60}: one unusual flow of a host is left alone, a host that keeps producing them is "
            "named; the matches it holds are counted in jenga_alerts_uncorroborated_total, never raised"
        ),
    ] = None
    warmup_s: Annotated[
        Literal["auto"] | Annotated[float, msgspec.Meta(ge=0.0, le=WARMUP_MAX_S)] | None,
        doc(
            "after a cold start (no window snapshot restored), hold the rule's alerts until event time has "
            "run this many seconds past the first event, while the windows fill (an empty window looks like "
            "a first probe); auto: the longest window_s among the window features of the model the rule "
            "reads (a counting rule: of the windows its condition reads); held alerts are counted in "
            "jenga_alerts_warmup_held_total, never raised; none or 0: no warm-up"
        ),
    ] = None
    target: Annotated[
        str | None,
        doc(
            "the event field whose address the rule's firewall actions block (the initiator: "
            "src_ip for flows, the client for records written from the server's side); default: "
            "each action's ip_field"
        ),
    ] = None
    actions: Annotated[list[str], doc("alert, and the names of configured actions to run")] = msgspec.field(
        default_factory=lambda: ["alert"]
    )
    output: Annotated[str, doc("a text line for the alert; %field is replaced by the event's value")] = ""
    tags: Annotated[list[str], doc("labels carried by every alert (e.g. ATT&CK ids)")] = []
    enabled: Annotated[bool, doc("a disabled rule is still checked, never evaluated")] = True

    def __post_init__(self) -> None:
        if self.cooldown_s and self.key is None:
            raise Invalid("cooldown_s", "needs key: the event field whose value is kept quiet (e.g. key: src_ip)")
        if self.min_matches is not None and self.key is None:
            raise Invalid("min_matches", "needs key: the event field whose matches are counted (e.g. key: src_ip)")
        if self.task is None:
            if not self.condition:
                raise Invalid("condition", "a rule without a task alerts on its condition alone: give one")
            for key, set_ in (
                ("threshold", self.threshold != "bundle"),
                ("labels", self.labels),
                ("severity", self.severity),
            ):
                if set_:
                    raise Invalid(key, "is about a task's scores; this rule has no task")


@dataclass
class Hit:
    rule: Rule
    row: int  # row in the decoded batch
    score: float | None  # None: a counting rule (no task)
    priority: str
    label: str | None


class Rule:
    def __init__(self, cfg: RuleConfig, task: TaskEntry | None, where: str, macros: dict[str, Any] | None = None):
        self.cfg, self.task, self.where = cfg, task, where
        self.warmup_span = 0.0  # seconds of event time held after a cold start (RuleEngine.resolve_warmup)
        self.threshold = self._threshold(cfg, task, where) if task is not None else None
        self.label_ids = self._labels(cfg, task, where) if task is not None else None
        self.condition = Condition(cfg.condition, macros or {}, f"{where}.condition")
        self.bands = sorted(cfg.severity, key=lambda b: -b.min_score)
        self._last: OrderedDict[str, float] = OrderedDict()
        self._recent: deque[float] = deque()  # times of this rule's alerts in the last 60 s (max_alerts_per_min)
        # per key, the event times of its last min_matches.count matches (LRU, bounded as cooldowns)
        self._matches: OrderedDict[str, list[float]] = OrderedDict()
        # keys whose cooldown or matches were forgotten to stay within COOLDOWN_KEYS_MAX (not those a
        # span old): the agent counts them (jenga_rule_keys_evicted_total)
        self.evicted = 0

    def within_budget(self, rows: npt.NDArray[np.intp], now: float) -> npt.NDArray[np.intp]:
        """The first rows that fit max_alerts_per_min, each remembered; the others are over budget."""
        room = self.budget_room(now)
        if room is None:
            return rows
        kept = rows[:room]
        self.spend(len(kept), now)
        return kept

    def budget_room(self, now: float) -> int | None:
        """Alerts max_alerts_per_min still allows now (None: no budget)."""
        budget = self.cfg.max_alerts_per_min
        if budget is None:
            return None
        recent = self._recent
        while recent and now - recent[0] >= BUDGET_WINDOW_S:
            recent.popleft()
        return max(0, budget - len(recent))

    def spend(self, n: int, now: float) -> None:
        if self.cfg.max_alerts_per_min is not None:
            self._recent.extend([now] * n)

    @staticmethod
    def _threshold(cfg: RuleConfig, task: TaskEntry, where: str) -> float:
        if cfg.threshold != "bundle":
            return float(cfg.threshold)
        if task.threshold is not None:
            return float(task.threshold)
        if not task.kind.binary:
            return 0.5
        raise ConfigError(f"{where}.threshold: the bundle has no threshold for task {task.name!r}; set a number")

    @staticmethod
    def _labels(cfg: RuleConfig, task: TaskEntry, where: str) -> list[int] | None:
        if cfg.labels is None:
            if not task.kind.binary:  # it would never alert: say so instead
                raise ConfigError(
                    f"{where}.labels: required for a {task.type} task: the predicted classes that alert "
                    f"(the classes of {task.name!r}: {', '.join(task.labels)})"
                )
            return None
        if task.kind.binary:
            raise ConfigError(
                f"{where}.labels: only for tasks that name a class; {task.name!r} is "
                f"{task.type} (binary: it alerts by threshold)"
            )
        unknown = [lab for lab in cfg.labels if lab not in task.labels]
        if unknown:
            raise ConfigError(f"{where}.labels: {unknown} are not classes of {task.name!r} ({', '.join(task.labels)})")
        return [task.labels.index(lab) for lab in cfg.labels]

    @property
    def fields(self) -> set[str]:
        return (
            self.condition.fields
            | ({self.cfg.key} if self.cfg.key else set())
            | ({self.cfg.target} if self.cfg.target else set())
            | set(re.findall(r"%([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)", self.cfg.output))
        )

    def candidates(self, batch: DecodedBatch, scores: Scores) -> npt.NDArray[np.intp]:
        if self.task is None:  # a counting rule: its condition alone
            return np.flatnonzero(self.condition.mask(batch.keys, len(batch)))
        s = scores.score[self.task.name]
        assert self.threshold is not None
        mask = s >= np.float32(self.threshold)
        if self.label_ids is not None:
            mask &= np.isin(scores.label[self.task.name], self.label_ids)
        elif not self.task.kind.binary:
            mask = np.zeros(len(s), dtype=bool)  # a class task alerts only on listed labels
        if mask.any() and self.cfg.condition:
            mask &= self.condition.mask(batch.keys, len(batch))
        return np.flatnonzero(mask)

    def priorities(self, scores: npt.NDArray[np.float32]) -> list[str]:
        """priority_for over a float32 array of scores."""
        out = np.full(len(scores), self.cfg.priority, dtype=object)
        done = np.zeros(len(scores), dtype=bool)
        for band in self.bands:
            now = ~done & (scores >= np.float32(band.min_score))
            out[now] = band.priority
            done |= now
        names: list[str] = out.tolist()
        return names

    def priority_for(self, score: float) -> str:
        # Scores are float32: compare bands in float32 too, as the threshold is.
        for band in self.bands:
            if np.float32(score) >= np.float32(band.min_score):
                return band.priority
        return self.cfg.priority

    def cooled_rows(
        self, keys: list[Any], rows: npt.NDArray[np.intp], now: float, room: int | None = None
    ) -> tuple[npt.NDArray[np.intp], int]:
        """The rows whose key may alert now (an unseen key, or its cooldown has passed), in
        order, at most `room` of them, each remembered; and how many more passed the cooldown
        past `room` (over the alert budget: not remembered, so an alert the budget left out
        starts no cooldown, and its key alerts once the budget allows)."""
        last, cooldown = self._last, self.cfg.cooldown_s
        allowed: list[int] = []
        over = 0
        for r in rows.tolist():
            k = _key_text(keys[r])
            t = last.get(k)
            if t is not None and now - t < cooldown:
                continue
            if room is not None and len(allowed) >= room:
                over += 1
                continue
            last[k] = now
            last.move_to_end(k)
            if len(last) > COOLDOWN_KEYS_MAX:  # bounded memory under a spray of source addresses
                last.popitem(last=False)
                self.evicted += 1
            allowed.append(r)
        return np.array(allowed, dtype=np.intp), over

    def corroborated(
        self, keys: list[Any], rows: npt.NDArray[np.intp], times: npt.NDArray[np.float64] | float
    ) -> npt.NDArray[np.intp]:
        """The rows whose key has matched min_matches.count times within less than
        min_matches.within_s, this match among them, in order. Each of `rows` is a match,
        remembered at its event time (`times`: per batch row, or one time for all): a late
        record counts where its time fell. A row without a key value is never corroborated."""
        assert self.cfg.min_matches is not None
        count, within = self.cfg.min_matches.count, self.cfg.min_matches.within_s
        seen, out = self._matches, list[int]()
        at = times[rows].tolist() if isinstance(times, np.ndarray) else [times] * len(rows)
        if not at:
            return np.array(out, dtype=np.intp)
        # keys whose newest match is a span before this batch's earliest can corroborate nothing more
        horizon = min(at) - within
        while seen and next(iter(seen.values()))[-1] <= horizon:
            seen.popitem(last=False)
        pop, insort, first_at, limit = seen.pop, bisect.insort, bisect.bisect_left, COOLDOWN_KEYS_MAX
        for r, t in zip(rows.tolist(), at):
            key = keys[r]
            if key is None:
                continue
            k = _key_text(key)
            mine = pop(k, None)
            if mine is None:
                mine = [t]
            elif t >= mine[-1]:  # in order: the usual case
                mine.append(t)
                if len(mine) >= count and t - mine[-count] < within:
                    out.append(r)
            else:  # a late record: every run of `count` that holds it
                insort(mine, t)
                i = first_at(mine, t)
                lo, hi = max(0, i - count + 1), min(i, len(mine) - count)
                if any(mine[j + count - 1] - mine[j] < within for j in range(lo, hi + 1)):
                    out.append(r)
            seen[k] = mine[-count:] if len(mine) > count else mine  # the most recently matched last
            if len(seen) > limit:  # bounded memory under a spray of source addresses
                seen.popitem(last=False)
                self.evicted += 1
        return np.array(out, dtype=np.intp)


def _key_text(key: Any) -> str:
    """A key's value as the rules' per-key state holds it."""
    return key.strip() if type(key) is str else (category_key(key) if key is not None else "")


class RuleEngine:
    def __init__(
        self,
        rules: list[RuleConfig],
        tasks: dict[str, TaskEntry],
        allowlist: Sequence[str] = (),
        clock: Callable[[], float] = time.monotonic,
        macros: dict[str, Any] | None = None,
    ):
        self.rules: list[Rule] = []
        check_macros(macros or {})
        for i, cfg in enumerate(rules):
            where = f"rules[{i}]"
            if cfg.task is not None and cfg.task not in tasks:
                raise ConfigError(f"{where}.task: {cfg.task!r} is not a task this agent runs ({', '.join(tasks)})")
            task = tasks[cfg.task] if cfg.task is not None else None
            rule = Rule(cfg, task, where, macros)  # a disabled rule is still checked
            if cfg.enabled:
                self.rules.append(rule)
        self.allow = [_network(a, f"allowlist[{i}]") for i, a in enumerate(allowlist)]
        self.clock = clock
        self.suppressed = 0
        self.over_budget: Counter[str] = Counter()  # by rule, since the agent last took them (take_over_budget)
        self.warmup = WarmUp()  # carried with the window state over a reload (agent._carry_state)
        self._warm_rules: list[Rule] = []  # rules with a warm-up (resolve_warmup)
        self.warmup_held: Counter[str] = Counter()  # by rule, since the agent last took them (take_warmup_held)
        self.uncorroborated: Counter[str] = Counter()  # matches min_matches held, by rule (take_uncorroborated)
        self.warmed: list[Rule] = []  # the rules the last evaluate ran a warm-up for (as it began)

    def resolve_warmup(self, windows: dict[str, Window], features: set[str], has_clock: bool) -> None:
        """Each rule's warm-up span in seconds from its `warmup_s`: `windows` are the pipeline's
        window features (the bundle's and the agent's), `features` the model's inputs, `has_clock`
        whether windows run at all (the warm-up runs on their event time)."""
        for rule in self.rules:
            value = rule.cfg.warmup_s
            if value is None or value == 0:
                continue
            where = f"{rule.where}.warmup_s"
            if not has_clock:
                raise ConfigError(
                    f"{where}: the warm-up runs on the windows' event time, and this agent has no windows "
                    "(neither the bundle's nor event.windows); remove it"
                )
            if value != "auto":
                rule.warmup_span = float(value)
                continue
            if rule.task is not None:
                used = {n: w for n, w in windows.items() if n in features}
                what = f"the window features of the model task {rule.task.name!r} reads"
            else:
                used = {n: w for n, w in windows.items() if n in rule.condition.fields}
                what = "the windows the rule's condition reads"
            longest = max((span(w) for w in used.values()), default=0.0)
            if longest <= 0:
                have = ", ".join(sorted(used)) or "none"
                raise ConfigError(f"{where}: auto: {what} have no window_s ({have}); give seconds, or leave it out")
            rule.warmup_span = longest
        self._warm_rules = [r for r in self.rules if r.warmup_span > 0]

    @property
    def warming(self) -> list[Rule]:
        """The rules whose warm-up has not ended."""
        return [r for r in self._warm_rules if not self.warmup.over(r.warmup_span)] if self._warm_rules else []

    @property
    def fields(self) -> set[str]:
        out: set[str] = set()
        for r in self.rules:
            out |= r.fields
        return out

    def evaluate(self, batch: DecodedBatch, scores: Scores) -> list[Hit]:
        hits: list[Hit] = []
        now = self.clock()
        # the windows were emptied (their clock came back): every warm-up starts over
        self.warmed = self._warm_rules if batch.reset_rows else self.warming
        warming = bool(self.warmed)
        if warming:
            self.warmup.advance(batch.times, batch.clock, batch.reset_rows)
        for rule in self.rules:
            rows = rule.candidates(batch, scores)
            if not len(rows):
                continue
            if warming and rule.warmup_span > 0:  # before cooldowns: a held alert starts none
                held = self.warmup.held(rule.warmup_span)
                if held is not None:
                    keep = rows[~held[rows]]
                    if len(keep) < len(rows):
                        self.warmup_held[rule.cfg.rule] += len(rows) - len(keep)
                    rows = keep
                    if not len(rows):
                        continue
            if rule.cfg.min_matches is not None:  # before cooldowns: a match in one still counts
                assert rule.cfg.key is not None
                times = batch.times if batch.times is not None else now
                kept = rule.corroborated(batch.keys[rule.cfg.key], rows, times)
                if len(kept) < len(rows):
                    self.uncorroborated[rule.cfg.rule] += len(rows) - len(kept)
                rows = kept
                if not len(rows):
                    continue
            if rule.cfg.key and rule.cfg.cooldown_s:
                # the budget applies among the rows the cooldown lets through, and only the
                # alerts it keeps start a cooldown
                allowed, over = rule.cooled_rows(batch.keys[rule.cfg.key], rows, now, rule.budget_room(now))
                self.suppressed += len(rows) - len(allowed) - over
                if over:
                    self.over_budget[rule.cfg.rule] += over
                rule.spend(len(allowed), now)
                rows = allowed
                if not len(rows):
                    continue
            elif rule.cfg.max_alerts_per_min is not None:
                kept = rule.within_budget(rows, now)
                if len(kept) < len(rows):
                    self.over_budget[rule.cfg.rule] += len(rows) - len(kept)
                rows = kept
                if not len(rows):
                    continue
            if rule.task is None:
                hits.extend(Hit(rule, r, None, rule.cfg.priority, None) for r in rows.tolist())
                continue
            task = rule.task.name
            row_scores = scores.score[task][rows]
            labels: list[str | None] = [None] * len(rows)
            if task in scores.label:
                labels = [rule.task.labels[i] for i in scores.label[task][rows].tolist()]
            hits.extend(
                map(Hit, [rule] * len(rows), rows.tolist(), row_scores.tolist(), rule.priorities(row_scores), labels)
            )
        return hits

    def take_over_budget(self) -> dict[str, int]:
        """Alerts left out by max_alerts_per_min since the last call, by rule (then reset)."""
        out = dict(self.over_budget)
        self.over_budget.clear()
        return out

    def take_warmup_held(self) -> dict[str, int]:
        """Alerts the warm-up held since the last call, by rule (then reset)."""
        out = dict(self.warmup_held)
        self.warmup_held.clear()
        return out

    def take_evicted(self) -> dict[str, int]:
        """Keys each rule forgot to stay within its bound since the last call, by rule (then reset)."""
        out = {}
        for rule in self.rules:
            if rule.evicted:
                out[rule.cfg.rule], rule.evicted = rule.evicted, 0
        return out

    def take_uncorroborated(self) -> dict[str, int]:
        """Matches min_matches held since the last call, by rule (then reset)."""
        out = dict(self.uncorroborated)
        self.uncorroborated.clear()
        return out

    def allowlisted(self, value: Any) -> bool:
        try:
            ip = ipaddress.ip_address(str(value))
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
        return any(ip in net for net in self.allow)


def _network(text: str, where: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ConfigError(f"{where}: {text!r} is not an IP address or network") from None


def render_output(template: str, values: dict[str, Any]) -> str:
    """Falco-style output: %name is replaced by the alert's value for name (<name?> when the event has none)."""
    return re.sub(
        r"%([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)", lambda m: _field(values, m.group(1)), template
    )


def _field(values: dict[str, Any], name: str) -> str:
    # The value is the event's: escaped, so the output stays one line that drives no terminal.
    value = values.get(name)
    return f"<{name}?>" if value is None else escape_text(_fmt(value))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else f"{v:.3f}"  # a count of 7.0 reads "7"
    return str(v)


def default_rules(tasks: dict[str, TaskEntry]) -> list[RuleConfig]:
    """With no rules configured: alert on every binary task at its bundle threshold."""
    return [
        RuleConfig(rule=f"{name}_threshold", task=name, desc=f"{name} above the bundle threshold", priority="warning")
        for name, t in tasks.items()
        if t.kind.binary
    ]
