"""Scale-out training (trainer/distributed.py): the choices a rank makes, and one real
2-process DDP run under torchrun (gloo, loopback) against the single process."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from jenga_edge.contract.errors import ConfigError
from tests.conftest import base_config, net_source, network_tasks
from tests.text_data import write_names
from trainer import distributed
from trainer.distributed import SINGLE, Dist

REPO = Path(__file__).resolve().parents[2]
TORCHRUN = {"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}


# ------------------------------------------------------------------ the choices


def test_a_plain_process_is_single_and_torchrun_variables_give_the_rank():
    assert distributed.from_env({}) is SINGLE and not SINGLE.active and SINGLE.main
    d = distributed.from_env(TORCHRUN)
    assert d == Dist(rank=1, world_size=2, local_rank=1) and d.active and not d.main


@pytest.mark.parametrize(
    ("change", "named"),
    [({"RANK": "2"}, "RANK=2"), ({"WORLD_SIZE": "two"}, "WORLD_SIZE"), ({"MASTER_PORT": ""}, "MASTER_PORT")],
)
def test_bad_torchrun_variables_are_named(change, named):
    with pytest.raises(ConfigError, match=named):
        distributed.from_env({**TORCHRUN, **change})


def test_backend_and_device_follow_the_device():
    # No GPU here: the CUDA/NCCL path is checked for its choices only.
    assert distributed.backend_for(torch.device("cpu")) == "gloo"
    assert distributed.backend_for(torch.device("cuda")) == "nccl"
    d = Dist(1, 2, 1)
    assert distributed.rank_device(torch.device("cpu"), d) == torch.device("cpu")
    assert distributed.rank_device(torch.device("cuda"), SINGLE) == torch.device("cuda")


def test_each_gpu_rank_takes_the_gpu_of_its_local_rank(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert distributed.rank_device(torch.device("cuda"), Dist(3, 4, 1)) == torch.device("cuda", 1)
    with pytest.raises(ConfigError, match="LOCAL_RANK 2: this machine has 2 GPU"):
        distributed.rank_device(torch.device("cuda"), Dist(2, 4, 2))


def test_batch_norm_is_synchronized_on_gpus_only():
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4))
    same, converted = distributed.sync_batch_norm(model, torch.device("cpu"))
    assert same is model and not converted
    synced, converted = distributed.sync_batch_norm(model, torch.device("cuda"))
    assert converted and isinstance(synced[1], nn.SyncBatchNorm)


def test_the_global_batch_must_divide_among_the_ranks():
    assert distributed.per_rank_batch(128, Dist(0, 2)) == 64
    assert distributed.per_rank_batch(127, SINGLE) == 127
    with pytest.raises(ConfigError, match=r"training\.batch_size: 127 does not divide among 2"):
        distributed.per_rank_batch(127, Dist(0, 2))


@pytest.mark.parametrize(("n", "world", "batch"), [(13, 2, 4), (12, 3, 6), (5, 4, 8), (40, 2, 8)])
def test_the_ranks_kth_batches_together_are_the_single_processs_kth_batch(n, world, batch):
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(n))
    b = batch // world
    shards = [distributed.shard(perm, Dist(r, world)) for r in range(world)]
    assert len({s.numel() for s in shards}) == 1  # every rank steps as often
    steps = -(-n // batch)
    assert all(-(-s.numel() // b) == steps for s in shards)
    for k in range(steps):
        single = set(perm[k * batch : (k + 1) * batch].tolist())
        parts = [s[k * b : (k + 1) * b].tolist() for s in shards]
        together = [i for p in parts for i in p]
        if (k + 1) * batch <= n:  # a full batch: disjoint shards, the same rows
            assert sorted(together) == sorted(single)
        else:  # the last: its rows, and padding (the permutation's first rows) so every rank has as many
            pad = -n % world
            assert single <= set(together) <= single | set(perm[:pad].tolist())
            assert len(together) == len(single) + pad
    assert distributed.shard(perm, SINGLE) is perm


def test_the_sentinel_writes_its_alerts_file_on_rank_0_only(tmp_path):
    from trainer.callbacks import JsonlAlertHandler, RecordingHandler, from_config
    from trainer.config import CallbacksConfig, SentinelConfig

    cfg = CallbacksConfig(sentinel=SentinelConfig(alerts_file=str(tmp_path / "a.jsonl")))
    assert isinstance(from_config(cfg)[0].handler, JsonlAlertHandler)
    assert isinstance(from_config(cfg, write_files=False)[0].handler, RecordingHandler)


def test_holdout_under_torchrun_is_refused(monkeypatch):
    from trainer.holdout import run_holdout

    for name, value in TORCHRUN.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match="holdout under torchrun"):
        run_holdout(base_config({}, [], Path("unused")), "threat")  # refused before the config is read


# ---------------------------------------------------------------- a real run


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(config: Path, out: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    """2 CPU ranks on loopback; the launcher and its ranks are ended if they overrun."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    if sys.platform.startswith("linux"):
        env["GLOO_SOCKET_IFNAME"] = "lo"  # gloo's own connections stay on loopback too
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1"]
    cmd += ["--master_port", str(free_loopback_port()), "-m", "trainer", "train", "--config", str(config)]
    cmd += ["--output-dir", str(out)]
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # our launcher's own session: it and its ranks
        proc.communicate()
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


@pytest.mark.slow
def test_two_ddp_processes_train_the_single_processs_model(data_dir, tmp_path):
    from trainer.config import config_from_dict
    from trainer.run import run_experiment

    epochs = 3
    # A tabular source (a supervised and a class-weighted multiclass head) and a text source
    # (a supervised head, and a distance head fitted and calibrated on the trunk) on one trunk.
    # progress on: the ranks' printing is part of what is checked; dropout 0 (per-rank masks differ).
    dga = {"column": "label", "positive_labels": ["dga"]}
    text = {"domain": {"max_bytes": 32, "normalize": "dns", "truncate": "tail"}}
    names = {"path": str(write_names(tmp_path / "names.jsonl", 400, seed=3)), "features": ["domain"],
             "kinds": {"domain": "text"}, "text": text}  # fmt: skip
    tasks = [
        *network_tasks(),
        {"name": "dga", "type": "anomaly_detection", "source": "dns", "label": dga},
        {"name": "far", "type": "anomaly_detection", "source": "dns", "label": dga, "mode": "distance"},
    ]
    raw = base_config({"net": net_source(data_dir / "network.jsonl"), "dns": names}, tasks, tmp_path / "cfg",
                      epochs=epochs, batch_size=128, device="cpu", progress=True)  # fmt: skip
    raw["model"]["text"] = {"channels": 8, "widths": [2, 3]}
    config = tmp_path / "ddp.yaml"
    config.write_text(yaml.safe_dump(raw, sort_keys=False))  # sources in order: the init follows it
    single = run_experiment(config_from_dict(raw), tmp_path / "single", out=None)
    assert not torch.distributed.is_initialized()  # a plain run makes no process group

    ddp = torchrun(config, tmp_path / "ddp")
    assert ddp.returncode == 0, ddp.stderr[-3000:]

    # Parity. Rank r steps every 2nd row of the single process's batch (64 of 128): DDP's mean of
    # the two half-batch gradients is the whole batch's gradient, summed in another order, so
    # weights differ by float rounding only: 2.4e-7 measured on the trained weights after 3
    # epochs, 2.3e-4 on the distance head's whitening matrix (entries up to ~170: 1.4e-6 of its
    # scale; an inverted covariance amplifies rounding). Allowed: 1e-4 of each tensor's scale
    # (at least 1). A wrong loss scale moved them by 1.7e-3 (the class-weighted loss without
    # distributed.weight_share), a wrong shard or batch by more.
    a = single.trainer.model.state_dict()
    b = torch.load(tmp_path / "ddp" / "best_model" / "weights.pt", weights_only=True)
    assert a.keys() == b.keys()
    for k in (k for k in a if a[k].numel()):
        scale = max(1.0, float(a[k].abs().max()))
        assert float((a[k].float() - b[k].float()).abs().max()) <= 1e-4 * scale, k
    summary = json.loads((tmp_path / "ddp" / "summary.json").read_text())
    assert summary["best_epoch"] == single.result.best_epoch
    assert summary["distributed"] == {"world_size": 2, "backend": "gloo", "global_batch_size": 128,
                                      "per_rank_batch_size": 64}  # fmt: skip
    for task, m in single.result.metrics.items():
        for key in ("roc_auc", "pr_auc", "accuracy", "macro_f1"):
            if key in m:
                assert summary["metrics"][task][key] == pytest.approx(m[key], abs=1e-3), (task, key)

    # Rank 0 alone wrote and printed: both ranks appending would double metrics.jsonl's lines.
    assert len((tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()) == epochs
    assert ddp.stdout.count("best epoch") == 1
    assert ddp.stderr.count(f"epoch   1/{epochs}") == 1
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == ["best_model", "metrics.jsonl", "summary.json"]
