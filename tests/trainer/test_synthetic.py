"""Tests for the seeded synthetic dataset generators (trainer/synthetic.py)."""

import csv
import ipaddress
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from jenga_edge.contract.errors import DataError
from trainer.synthetic import generate, main, write

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "network_traffic.json"

FIELDS = {
    "network": {
        "packet_size",
        "port",
        "protocol",
        "duration",
        "request_count",
        "bytes_sent",
        "bytes_received",
        "src_ip",
        "dst_ip",
        "label",
        "attack_type",
    },
    "fraud": {
        "transaction_amount",
        "merchant_category",
        "distance_from_home",
        "time_since_last_transaction",
        "transaction_hour",
        "is_international",
        "label",
    },
    "aiops": {
        "cpu_usage",
        "memory_usage",
        "disk_io",
        "network_throughput",
        "error_rate",
        "response_time",
        "host",
        "label",
    },
}
EXAMPLE_FIELDS = {
    "packet_size",
    "port",
    "protocol",
    "duration",
    "request_count",
    "bytes_sent",
    "bytes_received",
    "label",
}


@pytest.fixture(scope="module")
def datasets():
    return {use_case: generate(use_case, 5000, seed=0) for use_case in FIELDS}


# --------------------------------------------------------------------------- #
# Determinism and shape
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize("use_case", sorted(FIELDS))
def test_same_seed_same_rows(use_case):
    assert generate(use_case, 300, seed=7) == generate(use_case, 300, seed=7)


@pytest.mark.parametrize("use_case", sorted(FIELDS))
def test_different_seed_different_rows(use_case):
    assert generate(use_case, 300, seed=7) != generate(use_case, 300, seed=8)


@pytest.mark.parametrize("use_case", sorted(FIELDS))
def test_row_count(use_case):
    assert len(generate(use_case, 123, seed=1)) == 123
    assert generate(use_case, 0) == []


@pytest.mark.parametrize("use_case", ["fraud", "aiops"])
def test_exact_fields(datasets, use_case):
    assert all(set(row) == FIELDS[use_case] for row in datasets[use_case])


def test_network_fields_with_missing_duration(datasets):
    rows = datasets["network"]
    always = FIELDS["network"] - {"duration"}
    assert all(set(row) - {"duration"} == always for row in rows)
    missing = sum("duration" not in row for row in rows)
    # About 1%: present so imputation is exercised, rare enough not to matter.
    assert 0.003 * len(rows) <= missing <= 0.02 * len(rows)


def test_unknown_use_case_names_valid_choices():
    with pytest.raises(ValueError) as excinfo:
        generate("phishing", 10)
    message = str(excinfo.value)
    assert "phishing" in message
    for name in FIELDS:
        assert name in message


# --------------------------------------------------------------------------- #
# Value domains and label proportions
# --------------------------------------------------------------------------- #


def test_network_values(datasets):
    rows = datasets["network"]
    assert {row["protocol"] for row in rows} == {"tcp", "udp", "icmp"}
    assert {row["attack_type"] for row in rows} == {"none", "ddos", "port_scan", "exfiltration"}
    for row in rows:
        assert isinstance(row["port"], int) and 0 <= row["port"] <= 65535
        assert row["packet_size"] > 0 and row["request_count"] >= 1
        assert row["bytes_sent"] >= 0 and row["bytes_received"] >= 0
        assert row.get("duration", 1.0) > 0
        assert (row["label"] == "normal") == (row["attack_type"] == "none")


def test_network_proportions(datasets):
    rows = datasets["network"]
    share = Counter(row["label"] for row in rows)["malicious"] / len(rows)
    assert 0.25 <= share <= 0.35
    attacks = Counter(row["attack_type"] for row in rows if row["label"] == "malicious")
    for kind in ("ddos", "port_scan", "exfiltration"):
        assert attacks[kind] / sum(attacks.values()) >= 0.2


def test_network_ips_are_valid_ipv4(datasets):
    rows = datasets["network"]
    for row in rows:
        for key in ("src_ip", "dst_ip"):
            assert isinstance(ipaddress.ip_address(row[key]), ipaddress.IPv4Address)
    # Internal hosts live in RFC 1918 space (ipaddress's is_private would also
    # accept the documentation ranges the attackers use, so check explicitly).
    rfc1918 = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
    for row in rows:
        if row["attack_type"] == "exfiltration" or (row["port"] == 53 and row["label"] == "normal"):
            assert any(ipaddress.ip_address(row["src_ip"]) in net for net in rfc1918), row
    # Attackers mostly come from documentation ranges, but not always.
    attacker_nets = [ipaddress.ip_network(n) for n in ("203.0.113.0/24", "198.51.100.0/24")]
    ddos_sources = [ipaddress.ip_address(r["src_ip"]) for r in rows if r["attack_type"] == "ddos"]
    from_attacker_nets = sum(any(ip in net for net in attacker_nets) for ip in ddos_sources)
    assert 0.5 < from_attacker_nets / len(ddos_sources) < 1.0


def test_fraud_values_and_proportions(datasets):
    rows = datasets["fraud"]
    assert 0.03 <= sum(row["label"] for row in rows) / len(rows) <= 0.07
    assert 8 <= len({row["merchant_category"] for row in rows}) <= 12
    for row in rows:
        assert row["label"] in (0, 1) and isinstance(row["label"], int)
        assert isinstance(row["is_international"], bool)
        assert 0 <= row["transaction_hour"] <= 23
        assert row["transaction_amount"] > 0 and row["distance_from_home"] >= 0


def test_aiops_values_and_proportions(datasets):
    rows = datasets["aiops"]
    share = Counter(row["label"] for row in rows)["incident"] / len(rows)
    assert 0.05 <= share <= 0.11
    assert {row["label"] for row in rows} == {"normal", "incident"}
    for row in rows:
        assert 0 <= row["cpu_usage"] <= 100 and 0 <= row["memory_usage"] <= 100
        assert 0 <= row["error_rate"] <= 1
        assert row["host"].rsplit("-", 1)[1].isdigit()


# --------------------------------------------------------------------------- #
# Writing files
# --------------------------------------------------------------------------- #


def _as_csv_strings(rows, fields):
    return [{key: str(row[key]) if key in row else "" for key in fields} for row in rows]


@pytest.mark.parametrize("use_case", sorted(FIELDS))
def test_write_jsonl_round_trip(tmp_path, use_case):
    rows = generate(use_case, 200, seed=3)
    path = write(rows, tmp_path / "out.jsonl")
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == rows


@pytest.mark.parametrize("use_case", sorted(FIELDS))
def test_write_json_round_trip(tmp_path, use_case):
    rows = generate(use_case, 200, seed=3)
    path = write(rows, tmp_path / "out.json")
    assert json.loads(path.read_text()) == rows


@pytest.mark.parametrize("use_case", sorted(FIELDS))
def test_write_csv_round_trip(tmp_path, use_case):
    rows = generate(use_case, 200, seed=3)
    path = write(rows, tmp_path / "out.csv")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        assert set(reader.fieldnames) == FIELDS[use_case]
        back = list(reader)
    assert back == _as_csv_strings(rows, reader.fieldnames)


def test_write_rejects_unknown_extension(tmp_path):
    with pytest.raises(DataError):
        write([{"a": 1}], tmp_path / "out.parquet")


def test_cli_writes_same_file_for_same_seed(tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for path in (first, second):
        main(["--use-case", "network", "--rows", "50", "--seed", "7", "-o", str(path)])
    assert first.read_bytes() == second.read_bytes()
    assert len(first.read_text().splitlines()) == 50


# --------------------------------------------------------------------------- #
# Example file
# --------------------------------------------------------------------------- #


def test_example_network_file():
    rows = json.loads(EXAMPLE.read_text())
    assert len(rows) == 30
    assert Counter(row["label"] for row in rows) == {"normal": 15, "malicious": 15}
    for row in rows:
        assert set(row) == EXAMPLE_FIELDS
        assert row["protocol"] in {"tcp", "udp", "icmp"}
        assert isinstance(row["port"], int)


# --------------------------------------------------------------------------- #
# Learnability: hard enough to be interesting, easy enough to be learnable
# --------------------------------------------------------------------------- #

NUMERIC = ("packet_size", "port", "duration", "request_count", "bytes_sent", "bytes_received")
PROTOCOLS = ("tcp", "udp", "icmp")


def _network_matrix(rows, duration_fill):
    numeric = np.array([[row.get(key, duration_fill) for key in NUMERIC] for row in rows], float)
    protocol = np.array([[row["protocol"] == p for p in PROTOCOLS] for row in rows], float)
    labels = np.array([row["label"] == "malicious" for row in rows], float)
    return np.log1p(numeric), protocol, labels


def _roc_auc(labels, scores):
    """Mann-Whitney U over ranks, with ties given their average rank."""
    order = np.argsort(scores, kind="mergesort")
    _, inverse, counts = np.unique(scores[order], return_inverse=True, return_counts=True)
    sorted_ranks = (np.bincount(inverse, np.arange(1, len(scores) + 1)) / counts)[inverse]
    ranks = np.empty(len(scores))
    ranks[order] = sorted_ranks
    positives = labels.sum()
    negatives = len(labels) - positives
    return (ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives)


def test_roc_auc_helper():
    labels = np.array([0, 0, 1, 1], float)
    assert _roc_auc(labels, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert _roc_auc(labels, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert _roc_auc(labels, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    assert _roc_auc(labels, np.array([0.1, 0.4, 0.35, 0.8])) == 0.75


def _fit_logistic(x, y, steps=400, learning_rate=0.5):
    weights, bias = np.zeros(x.shape[1]), 0.0
    for _ in range(steps):
        error = 1.0 / (1.0 + np.exp(-(x @ weights + bias))) - y
        weights -= learning_rate * x.T @ error / len(y)
        bias -= learning_rate * error.mean()
    return weights, bias


def test_network_is_learnable_but_not_trivial():
    rows = generate("network", 5000, seed=11)
    train, test = rows[:3500], rows[3500:]
    # Impute and standardise with training statistics only, as a real pipeline would.
    fill = float(np.median([row["duration"] for row in train if "duration" in row]))
    x_train, p_train, y_train = _network_matrix(train, fill)
    x_test, p_test, y_test = _network_matrix(test, fill)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    x_train = np.hstack([(x_train - mean) / std, p_train])
    x_test = np.hstack([(x_test - mean) / std, p_test])

    weights, bias = _fit_logistic(x_train, y_train)
    auc = _roc_auc(y_test, x_test @ weights + bias)
    assert 0.85 <= auc <= 0.999, auc
