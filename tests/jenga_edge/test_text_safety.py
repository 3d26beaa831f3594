"""Output safety: what an event or a peer wrote cannot forge a line or drive a terminal.

A `src_ip` holding a newline once printed a fake "CRITICAL forged_rule" line in the
stdout sink's text and in `jenga-edge alerts`, and ANSI escapes reached the terminal
(issue 11). Real StringIO streams, a real SQLite file written by the sink, the CLI run
as a user runs it, and (marked slow) the agent itself with a stdout, an SQLite and a
syslog UDP sink on loopback.
"""

from __future__ import annotations

import io
import json
import socket

from click.testing import CliRunner

from jenga_edge.agent import Agent
from jenga_edge.cli import main as edge_cli
from jenga_edge.config import load_agent_config
from jenga_edge.contract.text import escape_text, json_text_safe, terminal_safe
from jenga_edge.rules import render_output
from jenga_edge.sinks import sqlite, stdout
from jenga_edge.sinks.sqlite import SqliteSink
from jenga_edge.sinks.stdout import StdoutSink, format_text
from jenga_edge.timestamps import now_iso

from .test_agent import batch, malicious_events, write_config
from .test_sinks import make_alert, parse_syslog

FORGED = "203.0.113.7\n2026-11-25T17:00:01Z CRITICAL forged_rule threat src=6.6.6.6"
ANSI = "\x1b[2J\x1b]0;owned\x07\x9b31m"  # clear screen, set the title (OSC ... BEL), CSI in C1
RAW = ["\n", "\r", "\x00", "\x1b", "\x07", "\x7f", "\x9b", "\u2028", "\u2029", "\u202e", "\u2066"]


def no_raw_controls(text: str, lines: int) -> None:
    """`text` is `lines` lines (ending in one newline each) and holds no other control character."""
    assert text.count("\n") == lines and text.endswith("\n")
    assert len(text.splitlines()) == lines  # str.splitlines also breaks at U+2028, U+0085, \x1c ...
    for c in RAW[1:]:
        assert c not in text, repr(c)


# --------------------------------------------------------------------------- escape_text


def test_escape_text_writes_control_separator_and_bidi_characters_visibly():
    assert escape_text("a\tb\nc\rd\x00e\x1bf\x7fg\x9bh\\i") == "a\\tb\\nc\\rd\\x00e\\x1bf\\x7fg\\x9bh\\\\i"
    assert escape_text("\u2028\u2029\u202a\u202e\u2066\u2069\u200e\u200f\u061c") == (
        "\\u2028\\u2029\\u202a\\u202e\\u2066\\u2069\\u200e\\u200f\\u061c"
    )
    assert escape_text("\udc80") == "\\udc80"  # a lone surrogate could not even be encoded
    for plain in ["203.0.113.7", "héllo wörld", "日本語", "a b", "2001:db8::1", ""]:
        assert escape_text(plain) == plain
    every = "".join(map(chr, range(0x00, 0xA0))) + "".join(RAW)
    out = escape_text(every)
    assert out.isprintable() and out.isascii()
    assert terminal_safe("\n" * 1000) == "\\n" * 248 + "\\..."  # cut at 500, escapes counted


def test_json_text_safe_keeps_json_meaning():
    value = "x\x7f\x9b\u2028\u202e\u2066é"
    text = json.dumps({"v": value}, ensure_ascii=False)
    safe = json_text_safe(text.encode())
    assert json.loads(safe) == {"v": value}
    assert safe == '{"v": "x\\u007f\\u009b\\u2028\\u202e\\u2066é"}'
    for c in ["\x7f", "\x85", "\x9b", "\u061c", "\u200e", "\u200f", "\u2029", "\u202a", "\u2069"]:
        assert json_text_safe(json.dumps(["é" + c], ensure_ascii=False).encode()).isprintable(), repr(c)
    plain = json.dumps({"v": "héllo 日本語 \u00a0"}, ensure_ascii=False)
    assert json_text_safe(plain.encode()) == plain


# --------------------------------------------------------------------------- stdout sink


def test_stdout_text_cannot_be_forged_by_a_newline_or_drive_a_terminal():
    hostile = make_alert(src_ip=FORGED + ANSI, dest_ip="10.0.0.5" + ANSI, task="threat\r", dest_port="22\n")
    buf = io.StringIO()
    StdoutSink(stdout.Config(format="text"), stream=buf).write_batch([hostile, make_alert(1)])
    no_raw_controls(buf.getvalue(), 2)
    first = buf.getvalue().splitlines()[0]
    assert "forged_rule" in first and not first.startswith("2026-11-25T17:00:01Z")
    # each value is one field: a space inside it cannot pass for the next field
    assert first.split(" ")[5] == (
        "src=203.0.113.7\\n2026-11-25T17:00:01Z\\x20CRITICAL\\x20forged_rule\\x20threat\\x20src=6.6.6.6"
        "\\x1b[2J\\x1b]0;owned\\x07\\x9b31m"
    )
    assert first.split(" ")[3] == "threat\\r"
    assert first.split(" ")[6] == "dst=10.0.0.5\\x1b[2J\\x1b]0;owned\\x07\\x9b31m:22\\n"


def test_stdout_text_escapes_every_field():
    line = format_text(
        {
            "timestamp": "not a time\n",
            "priority": "warning\x1b[0m",
            "rule": "r\u202e",
            "score": "n/a\n",
            "src_ip": "1.2.3.4",
            "src_port": "80\r",
            "actions": ["log\n", {"type": "block\x1b", "result": "ok\n"}, {"odd": "x\n"}],
        }
    )
    assert line.isprintable(), line
    assert line == (
        "not\\x20a\\x20time\\n WARNING\\x1b[0M r\\u202e - score=n/a\\n src=1.2.3.4:80\\r "
        'action=log\\n,block\\x1b:ok\\n,{"odd":"x\\\\n"}'
    )


def test_stdout_json_lines_cannot_be_broken():
    hostile = make_alert(src_ip=FORGED + ANSI + "\x7f\u2028\u2029\u202e\u2066", fields={"n": "\x00\r"})
    buf = io.StringIO()
    StdoutSink(stdout.Config(format="json"), stream=buf).write_batch([hostile, make_alert(1)])
    no_raw_controls(buf.getvalue(), 2)
    assert [json.loads(x) for x in buf.getvalue().splitlines()] == [hostile, make_alert(1)]


# --------------------------------------------------------------------------- jenga-edge alerts


def test_jenga_edge_alerts_prints_one_line_per_alert_from_a_real_store(tmp_path):
    db = tmp_path / "alerts.db"
    hostile = make_alert(0, timestamp=now_iso(), src_ip=FORGED + ANSI, rule="ssh\x1b[31m", task="t\u202e")
    sink = SqliteSink(sqlite.Config(path=str(db)))
    sink.write_batch([hostile, make_alert(1, timestamp=now_iso())])
    sink.close()
    runner = CliRunner()
    text = runner.invoke(edge_cli, ["alerts", "--db", str(db), "--since", "1h"])
    assert text.exit_code == 0, text.output
    no_raw_controls(text.stdout, 2)
    assert sum("forged_rule" in line for line in text.stdout.splitlines()) == 1
    assert "ssh\\x1b[31m" in text.stdout
    as_json = runner.invoke(edge_cli, ["alerts", "--db", str(db), "--since", "1h", "--json"])
    no_raw_controls(as_json.stdout, 2)
    assert sorted(json.loads(x)["fields"]["n"] for x in as_json.stdout.splitlines()) == [0, 1]
    assert any(json.loads(x)["src_ip"] == FORGED + ANSI for x in as_json.stdout.splitlines())


# --------------------------------------------------------------------------- rule output


def test_a_rule_output_renders_event_values_escaped():
    out = render_output("ssh brute force from %src_ip (score %score)", {"src_ip": FORGED + ANSI, "score": 0.97})
    assert out.isprintable() and out.startswith("ssh brute force from 203.0.113.7\\n2026-11-25T17:00:01Z ")
    assert out.endswith("\\x1b[2J\\x1b]0;owned\\x07\\x9b31m (score 0.970)")


# --------------------------------------------------------------------------- the agent


def test_the_agent_writes_hostile_alerts_safely_to_every_output(network_bundle, tmp_path, capsys):
    """One batch whose src_ip holds a forged alert line and ANSI escapes, through the real
    agent: stdout text, the SQLite store read back by `jenga-edge alerts`, syslog over UDP
    (with a small max_message_bytes: every alert arrives cut, counted and logged) and a log
    line quoting a failure."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(2)
    cfg = write_config(
        tmp_path,
        network_bundle[0],
        [{"type": "stdin"}],
        sinks={
            "screen": {"type": "stdout", "format": "text"},
            "store": {"type": "sqlite", "path": str(tmp_path / "alerts.db")},
            "siem": {
                "type": "syslog",
                "target": f"udp://127.0.0.1:{rx.getsockname()[1]}",
                "max_message_bytes": 600,
            },
        },
        rules=[
            {
                "rule": "threat",
                "task": "threat",
                "priority": "error",
                "actions": ["alert"],
                "output": "threat from %src_ip",
            }
        ],
    )
    logged: list[str] = []
    try:
        agent = Agent(load_agent_config(cfg), log=logged.append)
        alerts = agent.process(batch(malicious_events(300, FORGED + ANSI)))
        n = len(alerts)
        assert n > 0
        datagrams = [rx.recv(65535) for _ in range(n)]
        # syslog's output-stage worker cut them; the agent's loop mirrors its counts a few
        # times a second (and at stop): here, once, now that all were sent
        agent._sync_outputs()
        agent.log("batch failed: " + FORGED + ANSI)  # a log line quoting what a peer sent
        for sink in agent.sinks.values():
            sink.close()
    finally:
        rx.close()
    screen = capsys.readouterr().out
    no_raw_controls(screen, n)
    assert all(line.split(" ")[5].startswith("src=203.0.113.7\\n") for line in screen.splitlines())
    listed = CliRunner().invoke(edge_cli, ["alerts", "--db", str(tmp_path / "alerts.db"), "--limit", "100000"])
    no_raw_controls(listed.stdout, n)
    for data in datagrams:
        assert len(data) <= 600 and b"\n" not in data and b"\x1b" not in data
        parsed = parse_syslog(data)
        assert parsed["msg"].endswith(" bytes]") and "...[truncated " in parsed["msg"]
        assert parsed["params"]["src_ip"] == escape_text(FORGED + ANSI, backslash=False)
    assert agent.metrics.sink_truncated.labelled() == {"siem": n}
    assert agent.metrics.sink_lost.total() == 0
    truncated = [x for x in logged if x.startswith("sink siem: ")]
    assert len(truncated) == 1 and " alert(s) truncated: a message of " in truncated[0]
    quoted = [x for x in logged if x.startswith("batch failed: ")]
    assert quoted == ["batch failed: " + escape_text(FORGED + ANSI)]
    assert all(line.isprintable() for line in logged)
