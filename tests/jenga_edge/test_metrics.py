"""Tests for jenga_edge/metrics/: registry, exposition format, agent metrics, HTTP server."""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.error
import urllib.request

import pytest

from jenga_edge.contract.errors import ConfigError
from jenga_edge.contract.typed import convert
from jenga_edge.metrics.agent import AgentMetrics
from jenga_edge.metrics.registry import (
    BATCH_BUCKETS,
    CONTENT_TYPE,
    Counter,
    Gauge,
    Histogram,
    Registry,
    no_ip_labels,
)
from jenga_edge.metrics.server import MetricsConfig, MetricsServer

# ------------------------------------------------------------------ exposition


def test_golden_exposition_text():
    r = Registry()
    c = r.counter("app_requests_total", "Requests handled.", ("code", "method"))
    c.inc(code="200", method="get")
    c.inc(2, code="200", method="get")
    c.inc(code="500", method="post")
    r.counter("app_errors_total", "Errors.\nSecond line with \\ backslash.")
    g = r.gauge("app_temperature", "Temperature.")
    g.set(21.5)
    h = r.histogram("app_latency_seconds", "Latency.", buckets=(0.1, 1))
    h.observe(0.05)
    h.observe(0.5)
    h.observe(3)
    assert r.render() == (
        "# HELP app_requests_total Requests handled.\n"
        "# TYPE app_requests_total counter\n"
        'app_requests_total{code="200",method="get"} 3\n'
        'app_requests_total{code="500",method="post"} 1\n'
        "# HELP app_errors_total Errors.\\nSecond line with \\\\ backslash.\n"
        "# TYPE app_errors_total counter\n"
        "app_errors_total 0\n"
        "# HELP app_temperature Temperature.\n"
        "# TYPE app_temperature gauge\n"
        "app_temperature 21.5\n"
        "# HELP app_latency_seconds Latency.\n"
        "# TYPE app_latency_seconds histogram\n"
        'app_latency_seconds_bucket{le="0.1"} 1\n'
        'app_latency_seconds_bucket{le="1.0"} 2\n'
        'app_latency_seconds_bucket{le="+Inf"} 3\n'
        "app_latency_seconds_sum 3.55\n"
        "app_latency_seconds_count 3\n"
    )


def test_empty_registry_renders_nothing():
    assert Registry().render() == ""


def test_label_values_are_escaped():
    r = Registry()
    c = r.counter("x_total", "x", ("path",))
    c.inc(path='C:\\dir "quoted"\nnext')
    assert 'x_total{path="C:\\\\dir \\"quoted\\"\\nnext"} 1\n' in r.render()


def test_labelled_metric_without_series_renders_only_help_and_type():
    r = Registry()
    r.counter("y_total", "y", ("a",))
    assert r.render() == "# HELP y_total y\n# TYPE y_total counter\n"


def test_special_values():
    r = Registry()
    r.gauge("g_inf", "g").set(math.inf)
    r.gauge("g_nan", "g").set(math.nan)
    text = r.render()
    assert "g_inf +Inf\n" in text
    assert "g_nan NaN\n" in text


# ------------------------------------------------------------------- histogram


def test_histogram_buckets_are_cumulative_with_sum_and_count():
    h = Histogram("lat_seconds", "l", buckets=(0.001, 0.01, 0.1))
    for v in (0.0005, 0.001, 0.002, 0.05, 0.05, 7.0):
        h.observe(v)
    (s,) = h.series().values()
    assert s["buckets"] == [(0.001, 2), (0.01, 3), (0.1, 5), (math.inf, 6)]  # le is inclusive
    assert s["count"] == 6 == h.count()
    assert s["sum"] == pytest.approx(7.1035)
    lines = [ln for ln in "\n".join(h.render()).splitlines() if not ln.startswith("#")]
    assert lines == [
        'lat_seconds_bucket{le="0.001"} 2',
        'lat_seconds_bucket{le="0.01"} 3',
        'lat_seconds_bucket{le="0.1"} 5',
        'lat_seconds_bucket{le="+Inf"} 6',
        f"lat_seconds_sum {s['sum']!r}",
        "lat_seconds_count 6",
    ]


def test_histogram_with_labels_and_no_observations():
    h = Histogram("h_seconds", "h", ("task",), buckets=(1.0,))
    assert h.render() == ["# HELP h_seconds h", "# TYPE h_seconds histogram"]
    h.observe(0.5, task="a")
    assert 'h_seconds_bucket{task="a",le="1.0"} 1' in h.render()
    assert 'h_seconds_count{task="a"} 1' in h.render()


def test_unlabelled_histogram_without_observations_renders_zeros():
    h = Histogram("z_seconds", "z", buckets=(1.0,))
    assert h.render()[2:] == [
        'z_seconds_bucket{le="1.0"} 0',
        'z_seconds_bucket{le="+Inf"} 0',
        "z_seconds_sum 0.0",
        "z_seconds_count 0",
    ]


@pytest.mark.parametrize("buckets", [(), (1.0, 0.5), (0.5, 0.5), (math.nan,)])
def test_histogram_bad_buckets(buckets):
    with pytest.raises(ValueError, match="bucket"):
        Histogram("h", "h", buckets=buckets)


def test_histogram_le_label_is_reserved():
    with pytest.raises(ValueError, match="reserved"):
        Histogram("h", "h", ("le",))


def test_quantile_from_buckets_and_from_reservoir():
    bucketed = Histogram("a", "a", buckets=(1.0, 2.0, 4.0))
    reservoir = Histogram("b", "b", buckets=(1.0, 2.0, 4.0), recent=3)
    assert bucketed.quantile(0.5) is None and reservoir.quantile(0.5) is None
    for v in (0.5, 1.5, 1.5, 3.0):
        bucketed.observe(v)
        reservoir.observe(v)
    # 4 observations: rank 2 falls at the end of the (1, 2] bucket's first half.
    assert bucketed.quantile(0.5) == pytest.approx(1.5)
    bucketed.observe(100.0)  # +Inf bucket reads as the top finite bound
    assert bucketed.quantile(1.0) == 4.0
    # the reservoir keeps only the last 3: 1.5, 1.5, 3.0
    assert reservoir.quantile(0.5) == 1.5
    assert reservoir.quantile(0.99) == 3.0
    assert reservoir.count() == 4
    with pytest.raises(ValueError):
        reservoir.quantile(1.5)


def test_histogram_time_context_manager():
    h = Histogram("t_seconds", "t")
    with h.time():
        pass
    assert h.count() == 1 and 0 <= h.sum() < 1


# ---------------------------------------------------------- names and labels


@pytest.mark.parametrize("name", ["", "1abc", "has-dash", "has space", "é", "a.b", None])
def test_invalid_metric_name(name):
    with pytest.raises(ValueError, match="invalid metric name"):
        Counter(name, "h")


@pytest.mark.parametrize("name", ["a", "_a", "a:b_c1", ":x"])
def test_valid_metric_names(name):
    Counter(name, "h")


@pytest.mark.parametrize("labels", [("1a",), ("a-b",), ("__x",), ("a", "a")])
def test_invalid_label_names(labels):
    with pytest.raises(ValueError):
        Counter("c", "h", labels)


def test_duplicate_registration_rejected():
    r = Registry()
    r.counter("c_total", "c")
    with pytest.raises(ValueError, match="already registered"):
        r.gauge("c_total", "c")


def test_wrong_labels_and_negative_inc_rejected():
    c = Counter("c_total", "c", ("a",))
    with pytest.raises(ValueError, match="expected labels"):
        c.inc()
    with pytest.raises(ValueError, match="expected labels"):
        c.inc(b="x")
    with pytest.raises(ValueError, match="expected labels"):
        c.inc(a="x", b="y")
    with pytest.raises(ValueError, match="only goes up"):
        c.inc(-1, a="x")
    with pytest.raises(ValueError):
        c.inc(math.nan, a="x")
    with pytest.raises(ValueError, match="expected labels"):
        Counter("d_total", "d").inc(a="x")


def test_non_string_label_values_are_stringified():
    c = Counter("c_total", "c", ("n",))
    c.inc(n=3)  # the count is positional-only, so a label may be called `n`
    c.inc(4, n="3")
    assert c.series() == {("3",): 5}
    g = Gauge("g", "g", ("value",))
    g.set(2, value=1)
    assert g.value(value="1") == 2


@pytest.mark.parametrize(
    "value",
    [
        "10.0.0.1",
        "192.168.1.254",
        "8.8.8.8",
        "10.0.0.0/8",
        "::1",
        "2001:db8::1",
        "fe80::1%eth0",
        "[2001:db8::2]",
        "::ffff:10.1.2.3",
        "2001:db8::/32",
    ],
)
def test_agent_metrics_reject_ip_label_values(value):
    m = AgentMetrics()
    with pytest.raises(ValueError, match="IP address"):
        m.received.inc(5, source=value)
    with pytest.raises(ValueError, match="IP address"):
        m.alerts.inc(task="t", priority=value)
    with pytest.raises(ValueError, match="IP address"):
        m.set_bundle(value, "abc")
    assert m.received.total() == 0 and m.alerts.total() == 0
    assert m.snapshot()["bundle"] is None


@pytest.mark.parametrize("value", ["syslog", "zeek-conn", "10.0", "1", "bad_json", "dead", "beef:cafe"])
def test_non_ip_label_values_are_accepted(value):
    no_ip_labels("source", value)
    m = AgentMetrics()
    m.received.inc(2, source=value)
    assert m.received.value(source=value) == 2


def test_plain_counter_allows_ip_values():
    # The check belongs to AgentMetrics' metrics, not to every counter.
    c = Counter("c_total", "c", ("peer",))
    c.inc(peer="10.0.0.1")
    assert c.total() == 1


# ------------------------------------------------------------------------ gauge


def test_gauge_set_inc_dec_replace_remove():
    g = Gauge("g", "g", ("k",))
    g.set(5, k="a")
    g.inc(2, k="a")
    g.dec(k="a")
    assert g.value(k="a") == 6
    g.set(1, k="b")
    g.replace(9, k="c")
    assert g.series() == {("c",): 9}
    g.remove(k="c")
    assert g.series() == {}


def test_gauge_callback_evaluated_at_scrape_time():
    depth = [3]
    g = Gauge("q", "q", callback=lambda: depth[0])
    assert g.render()[-1] == "q 3"
    depth[0] = 7
    assert g.render()[-1] == "q 7"


def test_gauge_callback_failure_omits_sample():
    def boom():
        raise RuntimeError("x")

    g = Gauge("q", "q", callback=boom)
    assert g.render() == ["# HELP q q", "# TYPE q gauge"]
    assert g.value() is None
    with pytest.raises(ValueError, match="callback"):
        Gauge("q2", "q", ("a",), callback=lambda: 1)


# ----------------------------------------------------------------- concurrency


def test_concurrent_increments_are_exact():
    c = Counter("c_total", "c", ("k",))
    h = Histogram("h_seconds", "h", buckets=(0.5,))
    threads_n, per_thread = 8, 5000
    barrier = threading.Barrier(threads_n)

    def work(i: int) -> None:
        barrier.wait()
        for j in range(per_thread):
            c.inc(2, k=str(j % 3))
            h.observe(0.25 if j % 2 else 1.0)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert c.total() == 2 * threads_n * per_thread
    (s,) = h.series().values()
    assert s["count"] == threads_n * per_thread
    assert s["buckets"][0][1] == threads_n * per_thread // 2


def test_render_while_incrementing():
    r = Registry()
    c = r.counter("c_total", "c", ("k",))
    stop = threading.Event()

    def work() -> None:
        i = 0
        while not stop.is_set():
            c.inc(k=str(i % 50))
            i += 1

    t = threading.Thread(target=work)
    t.start()
    try:
        for _ in range(50):
            assert r.render().startswith("# HELP c_total c\n")
    finally:
        stop.set()
        t.join()


# --------------------------------------------------------------- agent metrics

AGENT_METRICS = {
    "jenga_dead_letters_lost_total": ("counter", ()),
    "jenga_sink_failure_spooled_total": ("counter", ("sink",)),
    "jenga_output_items_total": ("counter", ("stage", "state")),
    "jenga_output_queue_depth": ("gauge", ("stage",)),
    "jenga_events_received_total": ("counter", ("source",)),
    "jenga_events_scored_total": ("counter", ("task",)),
    "jenga_events_rejected_total": ("counter", ("reason",)),
    "jenga_events_filtered_total": ("counter", ()),
    "jenga_window_keys": ("gauge", ()),
    "jenga_window_evictions_total": ("counter", ()),
    "jenga_window_late_total": ("counter", ()),
    "jenga_window_own_time_clipped_total": ("counter", ("reason",)),
    "jenga_window_ahead_total": ("counter", ()),
    "jenga_window_resets_total": ("counter", ()),
    "jenga_window_snapshots_total": ("counter", ("result",)),
    "jenga_events_dropped_total": ("counter", ("source", "reason")),
    "jenga_connections_total": ("counter", ("source", "event")),
    "jenga_alerts_total": ("counter", ("task", "priority")),
    "jenga_alerts_over_budget_total": ("counter", ("rule",)),
    "jenga_rule_keys_evicted_total": ("counter", ("rule",)),
    "jenga_alerts_warmup_held_total": ("counter", ("rule",)),
    "jenga_alerts_uncorroborated_total": ("counter", ("rule",)),
    "jenga_actions_total": ("counter", ("type", "result")),
    "jenga_sink_alerts_lost_total": ("counter", ("sink",)),
    "jenga_action_results_lost_total": ("counter", ("sink",)),
    "jenga_sink_truncated_total": ("counter", ("sink",)),
    "jenga_action_failures_total": ("counter", ("action",)),
    "jenga_sources_waiting": ("gauge", ("source",)),
    "jenga_reloads_total": ("counter", ("result",)),
    "jenga_systemd_notify_failures_total": ("counter", ()),
    "jenga_batch_seconds": ("histogram", ()),
    "jenga_queue_depth": ("gauge", ()),
    "jenga_bundle_info": ("gauge", ("bundle_id", "sha256")),
    "jenga_up": ("gauge", ()),
}


def test_agent_metrics_are_exactly_the_documented_set():
    m = AgentMetrics()
    got = {x.name: (x.kind, x.labelnames) for x in m.registry.metrics()}
    assert got == AGENT_METRICS
    assert m.batch_seconds.buckets[0] == 0.00005 and m.batch_seconds.buckets[-1] == 1.0
    assert m.batch_seconds.buckets == BATCH_BUCKETS
    text = m.registry.render()
    assert "jenga_up 1\n" in text
    assert "jenga_queue_depth 0\n" in text


def fill(m: AgentMetrics) -> None:
    m.received.inc(1000, source="syslog")
    m.received.inc(200, source="zeek")
    m.scored.inc(1190, task="intrusion")
    m.rejected.inc(4, reason="bad_json")
    m.rejected.inc(6, reason="wrong_type")
    m.alerts.inc(30, task="intrusion", priority="high")
    m.alerts.inc(7, task="intrusion", priority="low")
    m.actions.inc(10, type="block", result="ok")
    m.actions.inc(2, type="block", result="failed")
    m.reloads.inc(result="ok")
    for _ in range(98):
        m.batch_seconds.observe(0.0008)
    m.batch_seconds.observe(0.0031)
    m.batch_seconds.observe(0.0031)


def test_snapshot_contents_are_plain_numbers():
    m = AgentMetrics()
    fill(m)
    m.set_bundle("b-1", "aa" * 32)
    s = m.snapshot()
    assert json.loads(json.dumps(s)) == s
    assert s["received"] == 1200 and s["received_by_source"] == {"syslog": 1000, "zeek": 200}
    assert s["scored"] == 1190 and s["scored_by_task"] == {"intrusion": 1190}
    assert s["rejected"] == 10 and s["rejected_by_reason"] == {"bad_json": 4, "wrong_type": 6}
    assert s["dropped"] == 0 and s["dropped_by_source"] == {}
    assert s["alerts"] == 37 and s["alerts_by_priority"] == {"high": 30, "low": 7}
    assert s["alerts_by_task_priority"] == {"intrusion/high": 30, "intrusion/low": 7}
    assert s["actions"] == 12 and s["actions_by_result"] == {"ok": 10, "failed": 2}
    assert s["reloads"] == {"ok": 1}
    assert s["queue_depth"] == 0
    assert s["batches"] == 100
    assert s["p50_batch_s"] == pytest.approx(0.0008)
    assert s["p99_batch_s"] == pytest.approx(0.0031)
    assert s["bundle"] == {"bundle_id": "b-1", "sha256": "aa" * 32}
    assert s["up"] == 1


def test_stats_line():
    m = AgentMetrics()
    fill(m)
    m.queue_depth.set_function(lambda: 3)
    assert m.stats_line() == (
        "received=1200 scored=1190 rejected=10 (bad_json=4 wrong_type=6) "
        "dropped=0 alerts=37 actions=12 queue=3 p50_batch=0.8ms p99_batch=3.1ms"
    )


def test_stats_line_shows_filtered_records_once_there_are_some():
    m = AgentMetrics()
    fill(m)
    m.filtered.inc(300)
    assert m.snapshot()["scored"] == 1200 - 10 - 300 and m.snapshot()["filtered"] == 300
    assert "received=1200 scored=890 filtered=300 rejected=10 " in m.stats_line()


def test_scored_counts_each_event_once_however_many_tasks_score_it():
    m = AgentMetrics()
    m.received.inc(100, source="syslog")
    m.received.inc(20, source="zeek")
    m.rejected.inc(5, reason="bad_json")
    for task in ("threat", "attack_type"):  # both tasks score every accepted event
        m.scored.inc(115, task=task)
    s = m.snapshot()
    assert s["scored"] == 115  # events: received - rejected, not 2 x 115
    assert s["scored_by_task"] == {"threat": 115, "attack_type": 115}
    assert m.scored.total() == 230  # the per-task counter itself sums task scores
    assert s["received"] == 120 and s["rejected"] == 5
    assert m.stats_line().startswith("received=120 scored=115 rejected=5 (bad_json=5) dropped=0 ")
    text = m.registry.render()
    assert 'jenga_events_scored_total{task="threat"} 115\n' in text
    assert 'jenga_events_scored_total{task="attack_type"} 115\n' in text


def test_stats_line_when_idle():
    assert AgentMetrics().stats_line() == (
        "received=0 scored=0 rejected=0 dropped=0 alerts=0 actions=0 queue=0 p50_batch=- p99_batch=-"
    )


def test_stats_line_p50_from_buckets_without_reservoir():
    m = AgentMetrics(recent_batches=0)
    for _ in range(10):
        m.batch_seconds.observe(0.0004)
    s = m.snapshot()
    assert 0.00025 < s["p50_batch_s"] <= 0.0005
    assert "p50_batch=0." in m.stats_line()


def test_bundle_info_is_replaced_on_reload():
    m = AgentMetrics()
    m.set_bundle("old", "11" * 32)
    m.set_bundle("new", "22" * 32)
    text = m.registry.render()
    assert f'jenga_bundle_info{{bundle_id="new",sha256="{"22" * 32}"}} 1\n' in text
    assert "old" not in text
    m.set_up(False)
    assert "jenga_up 0\n" in m.registry.render()


# ---------------------------------------------------------------------- server


def get(url: str) -> tuple[int, str, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.headers["Content-Type"], resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read().decode()


def test_server_endpoints_and_prompt_stop():
    m = AgentMetrics()
    m.received.inc(5, source="syslog")
    healthy = [True]
    server = MetricsServer(m.registry, port=0, healthy=lambda: healthy[0]).start()
    try:
        assert server.host == "127.0.0.1" and server.port > 0
        base = server.url
        assert base == f"http://127.0.0.1:{server.port}"

        status, ctype, body = get(base + "/metrics")
        assert status == 200
        assert ctype == CONTENT_TYPE and ctype.startswith("text/plain; version=0.0.4")
        assert body == m.registry.render()
        assert 'jenga_events_received_total{source="syslog"} 5\n' in body

        assert get(base + "/healthz") == (200, "text/plain; charset=utf-8", "ok\n")
        healthy[0] = False
        status, _, body = get(base + "/healthz")
        assert status == 503 and body != "ok\n"

        assert get(base + "/nope")[0] == 404
        assert get(base + "/")[0] == 404
        assert get(base + "/metrics?x=1")[0] == 200
    finally:
        t0 = time.monotonic()
        server.stop()
        assert time.monotonic() - t0 < 1.0
    server.stop()  # idempotent
    assert not server.running
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(base + "/metrics", timeout=2)


def test_server_is_the_http_modules_server_and_handler():
    from jenga_edge.metrics.http import HTTPServer, _Handler, make_server

    m = AgentMetrics()
    with MetricsServer(m.registry, port=0) as server:
        httpd = server._httpd
        assert isinstance(httpd, HTTPServer) and httpd.RequestHandlerClass is _Handler
        assert httpd.daemon_threads and httpd.registry is m.registry
    httpd = make_server("127.0.0.1", 0, m.registry, lambda: False)
    try:
        assert type(httpd) is HTTPServer and httpd.RequestHandlerClass is _Handler
        assert httpd.registry is m.registry and httpd.healthy() is False
    finally:
        httpd.server_close()


def test_server_head_requests_send_headers_only():
    m = AgentMetrics()
    with MetricsServer(m.registry, port=0) as server:
        req = urllib.request.Request(server.url + "/metrics", method="HEAD")
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"] == CONTENT_TYPE
            assert int(resp.headers["Content-Length"]) == len(m.registry.render().encode())
            assert resp.read() == b""


def test_server_health_callable_that_raises_is_unhealthy():
    def boom() -> bool:
        raise RuntimeError("x")

    with MetricsServer(Registry(), port=0, healthy=boom) as server:
        assert get(server.url + "/healthz")[0] == 503


def test_server_defaults_and_stop_without_start():
    server = MetricsServer(Registry())
    assert (server.host, server.port) == ("127.0.0.1", 9108)
    server.stop()
    server.stop()


def test_server_port_in_use_is_a_config_error():
    with MetricsServer(Registry(), port=0) as first, pytest.raises(ConfigError, match="cannot listen"):
        MetricsServer(Registry(), port=first.port).start()


# ---------------------------------------------------------------------- config


def test_metrics_config_defaults_and_bounds():
    cfg = convert(MetricsConfig, {})
    assert cfg == MetricsConfig(enabled=False, host="127.0.0.1", port=9108, stats_interval_s=60.0)
    cfg = convert(MetricsConfig, {"enabled": True, "port": 0, "stats_interval_s": 0})
    assert cfg.enabled and cfg.port == 0 and cfg.stats_interval_s == 0.0
    with pytest.raises(ConfigError, match="port"):
        convert(MetricsConfig, {"port": 70000})
    with pytest.raises(ConfigError, match="stats_interval_s"):
        convert(MetricsConfig, {"stats_interval_s": -1})
