"""The SOC sensor's model, judged as issue 10 asks: each attack tool held out of training
in turn, then the agent's own code scores a second lab run and the shared real captures.

    python bench/soc_eval.py                      # ~10 min: 6 tools + the full model, seed 1
    python bench/soc_eval.py --seeds 1 2 3        # mean over seeds
    python bench/soc_eval.py --tools hydra        # one fold

Per seed, one model per held-out tool (`lab.tool` rows of that tool are out of training
and validation, trainer/dataset.py's Holdout) and one full model. Each is exported to a
bundle, verified, and scored by the agent's decoder and scorer (jenga_edge.decode,
jenga_edge.score) over the evaluation stream in the order Suricata wrote it, in batches
of 1,024, window state carried across batches, as `jenga-edge run` does. A flow is
flagged when the score of a task that an enabled rule of the profile reads reaches the
rule's threshold (the bundle's, or the number the rule sets).

Reported, next to issue 10's targets:
- held-out tool: share of its flows flagged; for each of its attacker addresses, the
  event-time delay from the tool's first flow (flow.start) to the first flagged flow
  naming that address as src_ip (target: within 10 s), and the delay to when Suricata
  wrote that record (its `timestamp`: what the agent waits for);
- benign flows flagged per 10k benign flows of the evaluation stream (every flagged flow
  counted, no cooldown), and the agent's own false alerts (firmware_configs/
  soc_sensor_suricata.yaml, its cooldowns and counting rules, on the whole stream: alerts
  naming no attacker, and flood alerts naming a victim that no attack flow raised) per 10k
  benign flows (target <= 1); and the victims the flood rule named (a flood's own flow raised it);
- the full model on the shared captures (tests/fixtures/suricata, not made in the lab):
  flows and flows flagged, then the agent itself with firmware_configs/soc_sensor_suricata.yaml
  (both heads and the counting rules, cooldowns included): its alerts per rule, and whether
  one names the attacker (the spoofed flood's: its victim); on the benign captures, every
  alert is a false one.

The held-out tool is also reported as the agent sees it: the first of the agent's alerts
(both heads and the counting rules, as above) that a flow of that tool raised and that
names its attacker, in event time from the tool's first flow.

Training data: the files given by --train, by default the config's own (corpus-s7);
evaluation stream: --eval (corpus-s8, another seed of the training run's scenario: nothing
in it was trained on; a benign-only run such as lab/corpus/office-s10 reports false alerts
only, with --tools naming the folds). Prints tables and writes
build/bench/soc_eval.json. Measures, never asserts.

--dev: choose settings without looking at the evaluation run. Train and evaluate on the
training files alone, scoring the first (corpus-s7): its benign flows that start in every third block of
--dev-block-s seconds are kept out of training and validation (with the held-out tool),
and the benign metrics count only them; the held-out tool's flows are never trained on.
The shared captures are not scored (they are a final test).
"""

from __future__ import annotations

import argparse
import collections
import csv
import gzip
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from export.bundle_writer import ExportOptions, export_bundle  # noqa: E402
from jenga_edge.bundle import verify_bundle  # noqa: E402
from jenga_edge.contract.values import parse_time  # noqa: E402
from jenga_edge.decode import EventDecoder  # noqa: E402
from jenga_edge.score import Scorer  # noqa: E402
from trainer.config import load_config  # noqa: E402
from trainer.dataset import Holdout  # noqa: E402
from trainer.run import run_experiment  # noqa: E402

CONFIG = REPO / "examples" / "configs" / "suricata_flows.yaml"
PROFILE = REPO / "firmware_configs" / "soc_sensor_suricata.yaml"
CORPUS = REPO / "lab" / "corpus"
CAPTURES = REPO / "tests" / "fixtures" / "suricata"
LABELS_CSV = REPO.parent / "shared" / "datasets" / "pcaps" / "labels.csv"
BATCH = 1024


def when(text: str) -> float:
    t = parse_time(text)
    if t is None:
        raise ValueError(f"{text!r} is not an ISO 8601 time")
    return t


def read_lines(path: Path) -> list[bytes]:
    with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as fh:
        return [line.rstrip(b"\n") for line in fh if line.strip()]


def alerting_tasks() -> dict[str, float | None]:
    """The tasks whose scores raise alerts, those an enabled rule of the profile reads, each
    with the lowest threshold such a rule sets (None: the bundle's)."""
    import yaml

    out: dict[str, float | None] = {}
    for r in yaml.safe_load(PROFILE.read_text())["rules"]:
        if not r.get("task") or not r.get("enabled", True):
            continue
        thr = r.get("threshold", "bundle")
        thr = None if thr == "bundle" else float(thr)
        prev = out.get(r["task"], thr)
        out[r["task"]] = None if thr is None or prev is None else min(thr, prev)
    return out


def flag_stream(bundle_dir: Path, lines: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """(positions of the scored lines, flagged per scored line), as the agent scores them: a
    flow is flagged when the score of a task that raises alerts reaches the threshold its rule
    sets (the bundle's, or a number)."""
    bundle = verify_bundle(bundle_dir)
    rules = alerting_tasks()
    tasks = [t for t in bundle.tasks if t in rules]
    scorer = Scorer(bundle, tasks)
    decoder = EventDecoder(scorer.schema)
    positions, flagged = [], []
    for start in range(0, len(lines), BATCH):
        batch = decoder.decode(lines[start : start + BATCH])
        scores = scorer.score(batch.num, batch.cat, batch.text, batch.text_len)
        hit = np.zeros(len(batch), dtype=bool)
        for t in tasks:
            thr = rules[t] if rules[t] is not None else bundle.tasks[t].threshold
            hit |= scores.score[t] >= (0.5 if thr is None else np.float32(thr))
        positions += [start + i for i in batch.index]
        flagged.append(hit)
    return np.array(positions, dtype=np.int64), np.concatenate(flagged) if flagged else np.zeros(0, bool)


DEV_TOOL = "_dev_benign"


def in_dev(rec: dict[str, Any], block_s: float) -> bool:
    """A benign flow of --dev's benign test slice: it starts in every third block of block_s."""
    return rec["lab"]["label"] == "benign" and int(when(rec["flow"]["start"]) // block_s) % 3 == 1


def dev_training_file(lines: list[bytes], block_s: float, out: Path) -> Path:
    """The training run with its dev-slice benign flows' lab.tool set to DEV_TOOL (held out)."""
    with gzip.open(out, "wb") as fh:
        for line in lines:
            rec = json.loads(line)
            if rec.get("event_type") == "flow" and in_dev(rec, block_s):
                rec["lab"]["tool"] = DEV_TOOL
                line = json.dumps(rec).encode()
            fh.write(line + b"\n")
    return out


def train_and_export(
    cfg_path: Path, train: list[Path], seed: int, held: str | None, work: Path, dev: bool = False
) -> Path:
    paths = json.dumps([str(p) for p in train])  # a YAML list
    cfg = load_config(cfg_path, [f"sources.eve.path={paths}", f"training.seed={seed}"])
    out = {held} if held else set()
    if dev:
        out.add(DEV_TOOL)
    holdout = Holdout("eve", "lab.tool", frozenset(out)) if out else None
    run = run_experiment(cfg, work / "run", holdout=holdout, out=open("/dev/null", "w"))  # noqa: SIM115
    export_bundle(run.model_dir, work / "bundle", ExportOptions(), log=lambda s: None)
    return work / "bundle"


def false_alerts(bundle: Path, lines: list[bytes], recs: list[dict[str, Any]], counted: Any = None) -> dict[str, Any]:
    """The agent with the SOC profile on the evaluation stream: alerts that name no attacker
    (src_ip, or the target, is not an address of any attack step) are false alerts; with
    `counted`, only those whose flow (by flow_id) it accepts. Per attack tool and attacker,
    the event-time delay from its first flow to the first alert a flow of that tool raised
    naming it (`detected`).

    The agent's cooldowns and alert budgets run on its own clock, so a replay of a
    20-minute run that takes seconds keeps each key quiet for the whole replay: at most one
    alert per rule and address. The top-level numbers are that replay's; `event_time` holds
    the same numbers with the cooldowns and budgets applied in the records' time (when
    Suricata wrote each: when a live agent reads it), as a live sensor would raise them."""
    flows = [r for r in recs if r.get("event_type") == "flow"]
    by_flow = {r.get("flow_id"): r for r in flows}
    held: dict[str, int] = {}
    alerts, live = replay_and_live(bundle, lines, by_flow, held)
    out = _alert_metrics(alerts, flows, by_flow, counted)
    out["event_time"] = _alert_metrics(live, flows, by_flow, counted)
    out["warmup_held"] = held  # alerts the rules' warm-up held (every flow, attacks too), by rule
    return out


def flow_of(alert: dict[str, Any], by_flow: dict[Any, dict[str, Any]]) -> dict[str, Any] | None:
    """The flow record that raised `alert` (by the flow_id field it carries), if any."""
    return by_flow.get((alert.get("fields") or {}).get("flow_id"))


def per_rule(alerts: list[dict[str, Any]]) -> dict[str, int]:
    """How many of `alerts` each rule raised."""
    return dict(collections.Counter(a["rule"] for a in alerts))


def replay_and_live(
    bundle: Path, lines: list[bytes], by_flow: dict[Any, dict[str, Any]], held: dict[str, int] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The agent's alerts on `lines` as replayed (its own clock), and as a live sensor would
    raise them (cooldowns and budgets in event time: event_time_limits). `held` gets the
    alerts the rules' warm-up held in the replay, by rule (held before cooldowns: the same
    in both runs)."""
    raw = b"\n".join(lines) + b"\n"
    with tempfile.TemporaryDirectory() as tmp:
        alerts = agent_alerts(bundle, raw, Path(tmp), summary=held)
    with tempfile.TemporaryDirectory() as tmp:
        live = event_time_limits(agent_alerts(bundle, raw, Path(tmp), limits=False), by_flow)
    return alerts, live


def event_time_limits(alerts: list[dict[str, Any]], by_flow: dict[Any, dict[str, Any]]) -> list[dict[str, Any]]:
    """The alerts of a run without cooldowns and budgets (agent_alerts(limits=False)), less
    those the profile's cooldown_s and max_alerts_per_min would hold back, in event time: each
    alert at its record's `timestamp` (found by flow_id). Rules are independent, as in the agent."""
    import yaml

    rules = {r["rule"]: r for r in yaml.safe_load(PROFILE.read_text())["rules"]}
    last: dict[tuple[str, str], float] = {}
    spent: dict[str, list[float]] = {}
    kept = []
    for a in alerts:
        rule = rules[a["rule"]]
        r = flow_of(a, by_flow)
        t = when(r["timestamp"]) if r else float("nan")
        k = None
        if rule.get("cooldown_s") and rule.get("key"):
            k = (a["rule"], str(a.get(rule["key"]) or (a.get("fields") or {}).get(rule["key"])))
            if k in last and t - last[k] < rule["cooldown_s"]:
                continue
        if rule.get("max_alerts_per_min") is not None:
            recent = [x for x in spent.get(a["rule"], []) if t - x < 60.0]
            if len(recent) >= rule["max_alerts_per_min"]:
                spent[a["rule"]] = recent
                continue  # as in the agent: an alert the budget left out starts no cooldown
            spent[a["rule"]] = [*recent, t]
        if k is not None:
            last[k] = t
        kept.append(a)
    return kept


def _alert_metrics(
    alerts: list[dict[str, Any]], flows: list[dict[str, Any]], by_flow: dict[Any, dict[str, Any]], counted: Any
) -> dict[str, Any]:
    attackers = {r["lab"]["attacker"] for r in flows if r["lab"]["label"] == "attack"}

    def named(a: dict[str, Any]) -> Any:
        return (a.get("target") or {}).get("value") or a.get("src_ip")

    def names_victim(a: dict[str, Any], r: dict[str, Any] | None) -> bool:
        # a rule that names the victim (target: dest_ip, the flood rule), raised by an attack flow to it
        return (a.get("target") or {}).get("field") == "dest_ip" and r is not None and \
            r["lab"]["label"] == "attack" and named(a) == r.get("dest_ip")  # fmt: skip

    false = [a for a in alerts if named(a) not in attackers and not names_victim(a, flow_of(a, by_flow))]
    if counted is not None:
        false = [a for a in false if (r := flow_of(a, by_flow)) and counted(r)]
    by_rule = per_rule(false)
    # Those raised in the stream's first minute, while every window was still filling
    # (a sensor started without its window snapshot): a part of the total, not left out.
    start = min((when(r["timestamp"]) for r in flows), default=0.0)
    warming = sum(1 for a in false if (r := flow_of(a, by_flow)) and when(r["timestamp"]) < start + 60)
    first: dict[tuple[str, str], float] = {}
    for r in flows:
        if r["lab"]["label"] == "attack":
            k = (r["lab"]["tool"], r["lab"]["attacker"])
            first[k] = min(first.get(k, float("inf")), when(r["flow"]["start"]))
    detected: dict[str, dict[str, Any]] = {}
    victims: dict[str, dict[str, Any]] = {}  # per tool, per victim: the first alert naming it (the flood rule)
    first_at: dict[tuple[str, str], float] = {}
    for r in flows:
        if r["lab"]["label"] == "attack":
            k = (r["lab"]["tool"], r.get("dest_ip"))
            first_at[k] = min(first_at.get(k, float("inf")), when(r["flow"]["start"]))
    for a in alerts:
        r = flow_of(a, by_flow)
        if r is not None and names_victim(a, r):
            delay = round(when(r["flow"]["start"]) - first_at[(r["lab"]["tool"], r["dest_ip"])], 3)
            mine = victims.setdefault(r["lab"]["tool"], {}).setdefault(
                r["dest_ip"], {"delay_s": delay, "rule": a["rule"], "alerts": 0}
            )
            mine["alerts"] += 1
            if delay < mine["delay_s"]:
                mine.update(delay_s=delay, rule=a["rule"])
        if not r or r["lab"]["label"] != "attack" or named(a) != r["lab"]["attacker"]:
            continue
        k = (r["lab"]["tool"], r["lab"]["attacker"])
        delay = round(when(r["flow"]["start"]) - first[k], 3)
        mine = detected.setdefault(k[0], {}).setdefault(k[1], {"delay_s": delay, "rule": a["rule"]})
        if delay < mine["delay_s"]:
            mine.update(delay_s=delay, rule=a["rule"])
    for tool, addr in first:
        detected.setdefault(tool, {}).setdefault(addr, {"delay_s": None, "rule": None})
    return {"alerts": len(alerts), "false_alerts": len(false), "false_by_rule": by_rule,
            "false_first_60s": warming, "detected": detected, "victims_named": victims}  # fmt: skip


def lab_metrics(
    recs: list[dict[str, Any]], positions: np.ndarray, flagged: np.ndarray, held: str | None, counted: Any = None
) -> dict:
    flows = [(recs[p], bool(f)) for p, f in zip(positions.tolist(), flagged.tolist())]
    benign = [f for r, f in flows if r["lab"]["label"] == "benign" and (counted is None or counted(r))]
    out: dict[str, Any] = {"benign_flows": len(benign), "benign_flagged": int(sum(benign)),
                           "false_per_10k": 1e4 * sum(benign) / max(1, len(benign)), "tools": {}}  # fmt: skip
    tools = sorted({r["lab"]["tool"] for r, _ in flows if r["lab"]["label"] == "attack"})
    for tool in tools if held is None else [held]:
        mine = [(r, f) for r, f in flows if r["lab"]["tool"] == tool]
        attackers: dict[str, Any] = {}
        for addr in sorted({r["lab"]["attacker"] for r, _ in mine}):
            theirs = [(r, f) for r, f in mine if r["lab"]["attacker"] == addr]
            first = min(when(r["flow"]["start"]) for r, _ in theirs)
            named = [r for r, f in theirs if f and r["src_ip"] == addr]
            hit = min(named, key=lambda r: when(r["flow"]["start"])) if named else None
            attackers[addr] = {
                "flows": len(theirs), "flagged": sum(f for _, f in theirs),
                "delay_s": round(when(hit["flow"]["start"]) - first, 3) if hit else None,
                "logged_delay_s": round(min(when(r["timestamp"]) for r in named) - first, 3) if named else None,
            }  # fmt: skip
        out["tools"][tool] = {"flows": len(mine), "flagged_share": sum(f for _, f in mine) / max(1, len(mine)),
                              "attackers": attackers}  # fmt: skip
    return out


def agent_alerts(
    bundle: Path, raw: bytes, tmp: Path, limits: bool = True, summary: dict[str, int] | None = None
) -> list[dict[str, Any]]:
    """`jenga-edge run` with firmware_configs/soc_sensor_suricata.yaml (its rules: the model's
    rules on its two heads and the counting rules, cooldowns included) on `raw`; the alerts it wrote.
    limits=False: every rule's cooldown_s and max_alerts_per_min are off (event_time_limits
    applies them afterwards in event time); min_matches stays, as it counts in event time
    already. `summary` gets the run's warmup_held (by rule)."""
    import subprocess

    import yaml

    soc = yaml.safe_load(PROFILE.read_text())  # main() may point PROFILE at --profile
    if not limits:
        soc["rules"] = [{**r, "cooldown_s": 0, "max_alerts_per_min": None} for r in soc["rules"]]
    cfg = {**soc, "agent": {**soc["agent"], "bundle": str(bundle)}, "sources": [{"type": "stdin"}],
           "event": {**soc["event"], "snapshot": ""}, "sinks": {"jsonl": {"path": str(tmp / "alerts.jsonl")}},
           "dead_letter": {"path": str(tmp / "dead.jsonl")}, "metrics": {"stats_interval_s": 0}}  # fmt: skip
    (tmp / "agent.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "jenga_edge.cli", "run", "--config", str(tmp / "agent.yaml")],
                          input=raw, capture_output=True, check=True, cwd=REPO, timeout=600)  # fmt: skip
    if summary is not None:
        summary.update(json.loads(proc.stderr.decode().strip().splitlines()[-1]).get("warmup_held") or {})
    path = tmp / "alerts.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def capture_metrics(bundle: Path) -> dict[str, Any]:
    labels = {}
    if LABELS_CSV.exists():
        with LABELS_CSV.open() as fh:
            labels = {row["file"].removesuffix(".pcap"): row for row in csv.DictReader(fh)}
    out = {}
    for path in sorted(CAPTURES.glob("*.eve.json.gz")):
        stem = path.name.removesuffix(".eve.json.gz")
        lines = read_lines(path)
        positions, flagged = flag_stream(bundle, lines)
        recs = [json.loads(lines[p]) for p in positions.tolist()]
        attacker = labels.get(stem, {}).get("attacker_src_ip", "")
        named = None
        if attacker and not attacker.startswith("*"):
            named = any(f and r["src_ip"] == attacker for r, f in zip(recs, flagged.tolist()))
        held: dict[str, int] = {}
        alerts, live = replay_and_live(bundle, lines, {r.get("flow_id"): r for r in recs}, held)
        by_rule, live_by_rule = per_rule(alerts), per_rule(live)
        victim = attacker.split("victim ")[1].rstrip(")") if "victim " in attacker else None
        victim_named = None
        if victim:  # a flood from forged sources: the alert names its victim (the flood rule)
            victim_named = any((x.get("target") or {}).get("field") == "dest_ip"
                               and (x.get("target") or {}).get("value") == victim for x in alerts)  # fmt: skip
        alert_named = None
        if attacker and not attacker.startswith("*"):
            alert_named = any((x.get("target") or {}).get("value") == attacker or x.get("src_ip") == attacker
                              for x in alerts)  # fmt: skip
        out[stem] = {"attack": stem.startswith("attack"), "flows": len(recs), "flagged": int(flagged.sum()),
                     "attacker": attacker or None, "attacker_named": named, "alerts": by_rule,
                     "alerts_event_time": live_by_rule, "warmup_held": held,
                     "alert_names_attacker": alert_named, "victim": victim,
                     "alert_names_victim": victim_named}  # fmt: skip
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", type=Path, default=CONFIG)
    ap.add_argument("--train", type=Path, nargs="+", default=None,
                    help="training files (default: the config's); with --dev, the first is the run "
                         "evaluated on")  # fmt: skip
    ap.add_argument("--eval", type=Path, default=CORPUS / "corpus-s8" / "labelled.jsonl.gz")
    ap.add_argument("--seeds", type=int, nargs="+", default=[1])
    ap.add_argument("--tools", nargs="*", default=None,
                    help="held-out tools (default: every attack tool; none given: the full model only)")  # fmt: skip
    ap.add_argument("-o", "--out", type=Path, default=REPO / "build" / "bench" / "soc_eval.json")
    ap.add_argument("--report", type=Path, default=None, help="print the tables of a JSON this wrote; train nothing")
    ap.add_argument("--dev", action="store_true",
                    help="train and evaluate on --train alone, benign flows held out by time")  # fmt: skip
    ap.add_argument("--dev-block-s", type=float, default=120.0)
    ap.add_argument("--profile", type=Path, default=PROFILE, help="the agent profile whose rules raise the alerts")
    ap.add_argument("--bundles", type=Path, default=None,
                    help="keep each bundle here, and score one already here instead of training it again "
                         "(only with the same --config, --train and --dev)")  # fmt: skip
    a = ap.parse_args()
    globals()["PROFILE"] = a.profile.resolve()
    if a.report:
        report(json.loads(a.report.read_text()))
        return
    a.train = [p.resolve() for p in a.train or load_config(a.config).source_paths("eve")]
    counted = None
    if a.dev:
        a.eval = a.train[0]
        block = a.dev_block_s

        def counted(r: dict[str, Any]) -> bool:
            return in_dev(r, block)

    lines = read_lines(a.eval)
    recs = [json.loads(x) for x in lines]
    tools = a.tools if a.tools is not None else sorted({r["lab"]["tool"] for r in recs if r.get("event_type") == "flow"
                               and r["lab"]["label"] == "attack"})  # fmt: skip
    result: dict[str, Any] = {"train": [str(p) for p in a.train], "eval": str(a.eval), "config": str(a.config),
                              "seeds": a.seeds,
                              "dev_block_s": a.dev_block_s if a.dev else None, "profile": str(a.profile),
                              "folds": {}, "full": {}, "captures": {}}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        train = a.train
        if a.dev:  # the evaluated run's dev slice held out; the other files train as they are
            train = [dev_training_file(lines, a.dev_block_s, Path(tmp) / "dev-train.jsonl.gz"), *a.train[1:]]
        for seed in a.seeds:
            for held in [*tools, None]:
                t0 = time.perf_counter()
                work = (a.bundles.resolve() if a.bundles else Path(tmp)) / f"s{seed}-{held or 'full'}"
                if a.bundles and (work / "bundle").is_dir():
                    bundle = work / "bundle"
                else:
                    bundle = train_and_export(a.config, train, seed, held, work, dev=a.dev)
                positions, flagged = flag_stream(bundle, lines)
                m = lab_metrics(recs, positions, flagged, held, counted)
                m["agent"] = false_alerts(bundle, lines, recs, counted)
                m["agent"]["false_per_10k"] = 1e4 * m["agent"]["false_alerts"] / max(1, m["benign_flows"])
                m["seconds"] = round(time.perf_counter() - t0, 1)
                if held:
                    result["folds"].setdefault(held, {})[seed] = m
                else:
                    result["full"][seed] = m
                    if not a.dev:
                        result["captures"][seed] = capture_metrics(bundle)
                print(f"seed {seed} held out {held or '-'}: done in {m['seconds']} s", file=sys.stderr, flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(result, indent=1, default=str))  # first: what was measured is kept
    report(result)
    print(f"\nwritten {a.out}")


def _fmt(xs: list[float], pct: bool = False) -> str:
    xs = [x for x in xs if x is not None]
    never = sum(1 for x in xs if x == float("inf"))
    if never:  # an attacker never named in some runs: say in how many
        rest = _fmt([x for x in xs if x != float("inf")], pct)
        return f"never in {never}/{len(xs)}" + (f", else {rest}" if rest != "-" else "")
    if not xs:
        return "-"
    m = statistics.mean(xs)
    s = statistics.pstdev(xs) if len(xs) > 1 else 0.0
    return (
        (f"{100 * m:.1f} %" + (f" ± {100 * s:.1f}" if s else ""))
        if pct
        else (f"{m:.1f}" + (f" ± {s:.1f}" if s else ""))
    )


def _live(runs: list[dict[str, Any]]) -> list[float]:
    """The agent's false alerts per 10k benign flows with event-time cooldowns (runs that have them)."""
    return [1e4 * m["agent"]["event_time"]["false_alerts"] / max(1, m["benign_flows"]) for m in runs
            if "event_time" in m["agent"]]  # fmt: skip


def _agent_delay(m: dict[str, Any], tool: str) -> float | None:
    """The agent's first alert naming each attacker of `tool`: the slowest attacker's (inf: one never named)."""
    agent = m["agent"].get("event_time") or m["agent"]
    theirs = (agent.get("detected") or {}).get(tool)
    if not theirs:
        return None
    return max(float("inf") if a["delay_s"] is None else a["delay_s"] for a in theirs.values())


def report(r: dict[str, Any]) -> None:
    train = [r["train"]] if isinstance(r["train"], str) else r["train"]  # one file, before lists
    print(f"\nLeave one tool out (train {', '.join(Path(p).parent.name for p in train)}, "
          f"evaluate {Path(r['eval']).parent.name}, seeds {r['seeds']})")  # fmt: skip
    if r.get("dev_block_s"):
        print(f"(--dev: benign metrics over the benign flows starting in every third {r['dev_block_s']:g} s block, "
              "held out of training)")  # fmt: skip
    print(
        "(false alerts /10k: the agent's, its cooldowns on its own clock over a replay of seconds; live: "
        "cooldowns and budgets in event time, as a live sensor; agent: its first alert naming the attacker)"
    )
    print(f"{'held-out tool':<14} {'flows':>6} {'flagged':>14} {'first alert (event s)':>22} {'logged (s)':>11} "
          f"{'benign flagged /10k':>20} {'false alerts /10k':>18} {'live /10k':>10} "
          f"{'agent: first alert (s)':>23}")  # fmt: skip
    for tool, by_seed in sorted(r["folds"].items()):
        runs = list(by_seed.values())
        if not runs[0]["tools"].get(tool, {}).get("attackers"):  # a benign-only evaluation run
            flagged, false = _fmt([m["false_per_10k"] for m in runs]), _fmt([m["agent"]["false_per_10k"] for m in runs])
            print(f"{tool:<14} {0:>6} {'-':>14} {'-':>22} {'-':>11} {flagged:>20} {false:>18} "
                  f"{_fmt(_live(runs)):>10} {'-':>23}")  # fmt: skip
            continue
        delays = [max((a["delay_s"] if a["delay_s"] is not None else float("inf")) for a in m["tools"][tool]
                      ["attackers"].values()) for m in runs]  # fmt: skip
        logged = [max((a["logged_delay_s"] if a["logged_delay_s"] is not None else float("inf")) for a in m["tools"]
                      [tool]["attackers"].values()) for m in runs]  # fmt: skip
        agent = [_agent_delay(m, tool) for m in runs]
        print(f"{tool:<14} {runs[0]['tools'][tool]['flows']:>6} "
              f"{_fmt([m['tools'][tool]['flagged_share'] for m in runs], True):>14} "
              f"{_fmt(delays):>22} {_fmt(logged):>11} {_fmt([m['false_per_10k'] for m in runs]):>20} "
              f"{_fmt([m['agent']['false_per_10k'] for m in runs]):>18} {_fmt(_live(runs)):>10} "
              f"{_fmt(agent):>23}")  # fmt: skip
    full = list(r["full"].values())
    if full:
        print(
            "\nFull model on the evaluation stream: benign flows flagged per 10k "
            f"{_fmt([m['false_per_10k'] for m in full])}"
            f"; the agent's false alerts per 10k benign flows {_fmt([m['agent']['false_per_10k'] for m in full])} "
            f"(first seed: {full[0]['agent']['false_by_rule']} of {full[0]['agent']['alerts']} alerts); "
            f"live (event-time cooldowns) {_fmt(_live(full))}"
            + (f" (first seed: {full[0]['agent']['event_time']['false_by_rule']})" if _live(full) else "")
        )
        for seed, m in r["full"].items():
            for name, x in [("replay", m["agent"]), ("live", m["agent"].get("event_time"))]:
                if x and "false_first_60s" in x:
                    print(f"  seed {seed} {name}: {x['false_alerts']} false alerts {x['false_by_rule']}, "
                          f"{x['false_first_60s']} of them in the stream's first 60 s")  # fmt: skip
            for x in (m["agent"], m["agent"].get("event_time") or {}):
                for tool, vs in sorted((x.get("victims_named") or {}).items()):
                    print(
                        f"  seed {seed}: {tool}'s victims named: "
                        + ", ".join(
                            f"{v} at {d['delay_s']} s ({d['rule']}, {d['alerts']} alerts)"
                            for v, d in sorted(vs.items())
                        )
                    )
            if m["agent"].get("warmup_held"):
                print(f"  seed {seed}: the rules' warm-up held {m['agent']['warmup_held']} (every flow, attacks too)")
        for tool in sorted(full[0]["tools"]):
            print(f"  {tool:<12} flagged {_fmt([m['tools'][tool]['flagged_share'] for m in full], True)}")
    caps = list(r["captures"].values())
    if caps:
        print("\nShared captures (full model; the agent with firmware_configs/soc_sensor_suricata.yaml)")
        head = "alerts (first seed; live: event-time cooldowns)"
        print(f"  {'capture':<34} {'flows':>6} {'flows flagged':>14} {head:<60} attacker named")
        for stem in caps[0]:
            c = caps[0][stem]
            flagged = _fmt([x[stem]["flagged"] for x in caps])
            alerts = ", ".join(f"{k} {v}" for k, v in sorted(c["alerts"].items())) or "none"
            if "alerts_event_time" in c:
                live = ", ".join(f"{k} {v}" for k, v in sorted(c["alerts_event_time"].items())) or "none"
                alerts += f" (live: {live})"
            if c.get("warmup_held"):
                alerts += "; warm-up held " + ", ".join(f"{k} {v}" for k, v in sorted(c["warmup_held"].items()))
            named = [x[stem]["alert_names_attacker"] for x in caps]
            if c.get("victim"):
                named = [f"victim {c['victim']}: {x[stem].get('alert_names_victim')}" for x in caps]
            print(f"  {stem:<34} {c['flows']:>6} {flagged:>14} {alerts:<60} "
                  f"{named if c['attack'] else '(benign)'}")  # fmt: skip


if __name__ == "__main__":
    main()
