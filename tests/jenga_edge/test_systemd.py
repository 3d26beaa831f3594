"""systemd: the sd_notify protocol against fake notify sockets (a path and an abstract
name), journal priorities, the shipped unit under `systemd-analyze verify` and
`security`, and the real agent process: READY only once it serves, WATCHDOG only while
its scoring loop turns, RELOADING/READY around SIGHUP, STOPPING at the stop; and the
agent under MemoryDenyWriteExecute's seccomp filter (onnxruntime must not JIT)."""

from __future__ import annotations

import ctypes
import io
import os
import platform
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from jenga_edge.systemd import JournalLog, Notifier, PrefixedStream, journal_stream
from tests.jenga_edge.test_agent import REPO, events, write_config

UNIT_DIR = REPO / "packaging" / "systemd"
ANALYZE = shutil.which("systemd-analyze")


class NotifySocket:
    """A fake $NOTIFY_SOCKET: an AF_UNIX datagram socket bound to a path in `tmp`, or to an
    abstract name; `recv` returns each datagram's fields as a dict."""

    def __init__(self, tmp: Path, abstract: bool = False):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"jenga-test-{os.getpid()}-{os.urandom(4).hex()}"
            self.sock.bind("\0" + name)
            self.env = "@" + name
        else:
            self.sock.bind(str(tmp / "notify.sock"))
            self.env = str(tmp / "notify.sock")
        self.messages: list[dict[str, str]] = []

    def recv(self, timeout: float) -> dict[str, str] | None:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return None
        msg = dict(line.split("=", 1) for line in data.decode().split("\n"))
        self.messages.append(msg)
        return msg

    def wait_for(self, key: str, timeout: float = 30.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            msg = self.recv(left)
            if msg is not None and key in msg:
                return msg
        raise AssertionError(f"no {key} within {timeout} s; got {self.messages[-5:]}")

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def notify_path(tmp_path):
    s = NotifySocket(tmp_path)
    yield s
    s.close()


@pytest.fixture
def notify_abstract(tmp_path):
    s = NotifySocket(tmp_path, abstract=True)
    yield s
    s.close()


# ------------------------------------------------------------------ the protocol


@pytest.mark.parametrize("which", ["notify_path", "notify_abstract"])
def test_the_notifier_speaks_sd_notify_to_a_path_and_an_abstract_socket(which, request):
    fake: NotifySocket = request.getfixturevalue(which)
    env = {"NOTIFY_SOCKET": fake.env, "WATCHDOG_USEC": "2000000", "WATCHDOG_PID": str(os.getpid()), "KEEP": "1"}
    n = Notifier.from_environ(env)
    assert env == {"KEEP": "1"}  # taken out: commands the agent starts must not inherit them
    assert n.watchdog_s == 2.0
    n.ready("serving bundle b\nsecond line")
    assert fake.recv(2) == {"READY": "1", "STATUS": "serving bundle b second line"}  # one field, one line
    n.reloading()
    msg = fake.recv(2)
    assert msg is not None and msg["RELOADING"] == "1" and int(msg["MONOTONIC_USEC"]) > 0
    n.stopping()
    assert fake.recv(2)["STOPPING"] == "1"  # type: ignore[index]
    n.stopping()
    n.alive(lambda: "x")
    assert fake.recv(0.2) is None  # after STOPPING=1 nothing more is said
    assert n.sent == 3 and n.failed == 0


def test_watchdog_pings_at_half_the_interval_and_status_in_between(notify_path):
    now = [100.0]
    n = Notifier(notify_path.env, watchdog_s=4.0, clock=lambda: now[0])
    n.ready("serving")
    notify_path.recv(2)
    seen = []
    for _ in range(13):  # 0 .. 6 s in 0.5 s steps
        n.alive(lambda: "counts")
        now[0] += 0.5
    while (msg := notify_path.recv(0.2)) is not None:
        seen.append(msg)
    assert [m.get("WATCHDOG") for m in seen] == ["1", "1", "1", "1"]  # at 0, 2, 4, 6 s: every WatchdogSec/2
    assert all(m["STATUS"] == "counts" for m in seen)
    # no watchdog: STATUS only, every STATUS_EVERY_S
    quiet = Notifier(notify_path.env, None, clock=lambda: now[0])
    for _ in range(50):
        quiet.alive(lambda: "counts")
        now[0] += 0.5
    msgs = []
    while (msg := notify_path.recv(0.2)) is not None:
        msgs.append(msg)
    assert len(msgs) == 3 and not any("WATCHDOG" in m for m in msgs)  # at 0, 10, 20 s of 25


@pytest.mark.parametrize(
    "env,watchdog",
    [
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # meant for another process
        ({"WATCHDOG_USEC": "soon"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({}, None),
    ],
)
def test_the_watchdog_is_read_from_the_environment(env, watchdog, notify_path):
    assert Notifier.from_environ({"NOTIFY_SOCKET": notify_path.env, **env}, pid=4242).watchdog_s == watchdog


def test_without_notify_socket_nothing_is_sent_nor_counted():
    n = Notifier.from_environ({"WATCHDOG_USEC": "1000000"})
    assert not n.enabled and n.watchdog_s is None
    n.ready("x")
    n.alive(lambda: "x")
    n.reloading()
    n.stopping()
    assert n.sent == n.failed == 0


def test_a_failed_notification_is_counted_and_said_never_raised(tmp_path):
    n = Notifier(str(tmp_path / "nobody-listens.sock"), watchdog_s=1.0)
    counted, said = [], []
    n.attach(lambda: counted.append(1), lambda key, message: said.append((key, message)))
    n.ready("serving")
    n.alive(lambda: "x")
    assert n.failed == 2 and len(counted) == 2
    assert said[0][0] == "systemd:notify" and "nobody-listens.sock" in said[0][1]


# ------------------------------------------------------------------ journal


def test_journal_lines_carry_their_priority_and_nothing_else():
    out = io.StringIO()
    log = JournalLog(out, journal=True)
    log("started")
    log.warning("sink x failed")
    log.error("reload failed\n<0>injected")
    assert out.getvalue() == "<6>started\n<4>sink x failed\n<3>reload failed\n<3><0>injected\n"
    plain = io.StringIO()
    JournalLog(plain, journal=False).warning("sink x failed")
    assert plain.getvalue() == "sink x failed\n"  # a terminal or a file: as before


def test_the_journal_is_recognised_by_stderrs_device_and_inode(tmp_path):
    path = tmp_path / "stream"
    with open(path, "w") as fh:
        st = os.fstat(fh.fileno())
        assert journal_stream(fh, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        assert not journal_stream(fh, {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})  # stderr redirected
        assert not journal_stream(fh, {"JOURNAL_STREAM": "garbage"})
        assert not journal_stream(fh, {})
    assert not journal_stream(io.StringIO(), {"JOURNAL_STREAM": "1:2"})


def test_other_writers_to_stderr_get_a_priority_too():
    out = io.StringIO()
    s = PrefixedStream(out)  # type: ignore[arg-type]
    s.write("error: config.yaml: agent.bundle: ")
    s.write("missing\nTraceback (most recent call last):\n  File x\n")
    s.write("partial")
    s.flush()
    assert out.getvalue() == (
        "<3>error: config.yaml: agent.bundle: missing\n<4>Traceback (most recent call last):\n<4>  File x\n<4>partial\n"
    )


def test_the_cli_error_line_reaches_the_journal_as_an_error(tmp_path):
    err = tmp_path / "journal"
    with open(err, "w") as fh:
        st = os.fstat(fh.fileno())
        env = {**os.environ, "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        cmd = [sys.executable, "-m", "jenga_edge.cli", "run", "--config", str(tmp_path / "none.yaml")]
        proc = subprocess.run(cmd, stderr=fh, env=env, cwd=REPO, timeout=60)
    assert proc.returncode == 2
    assert err.read_text().splitlines() == [f"<3>error: {tmp_path / 'none.yaml'}: config file not found"]


# ------------------------------------------------------------------ the unit


def _installed_copy(tmp_path: Path, dropins: bool) -> Path:
    """The shipped unit (and its drop-ins) with ExecStart pointing at this checkout's
    jenga-edge, so that verify checks a command that exists rather than /usr/local/bin."""
    exe = shutil.which("jenga-edge", path=str(Path(sys.executable).parent)) or sys.executable
    text = (UNIT_DIR / "jenga-edge.service").read_text()
    assert "ExecStart=/usr/local/bin/jenga-edge run " in text
    (tmp_path / "jenga-edge.service").write_text(text.replace("/usr/local/bin/jenga-edge", exe))
    if dropins:
        shutil.copytree(UNIT_DIR / "jenga-edge.service.d", tmp_path / "jenga-edge.service.d")
    return tmp_path / "jenga-edge.service"


def _verify(unit: Path) -> list[str]:
    """systemd-analyze verify's complaints about `unit` (it exits 0 on unknown keys and bad
    values, so its words are what count)."""
    proc = subprocess.run([ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=60)  # type: ignore[list-item]
    said = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "jenga-edge" in ln]
    return said + ([f"exit {proc.returncode}"] if proc.returncode else [])


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("dropins", [False, True], ids=["unit", "with-firewall-dropin"])
def test_systemd_analyze_verifies_the_unit(tmp_path, dropins):
    assert _verify(_installed_copy(tmp_path, dropins)) == []


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
def test_the_verify_check_can_fail(tmp_path):
    unit = _installed_copy(tmp_path, dropins=True)
    with open(tmp_path / "jenga-edge.service.d" / "firewall.conf", "a") as fh:
        fh.write("WatchdogSec=soon\n")
    assert any("firewall.conf" in line and "soon" in line for line in _verify(unit))


def _unit_settings(unit: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out.setdefault(key, []).append(value)
    return out


def test_the_unit_is_hardened_and_holds_no_capability_without_the_dropin():
    unit = _unit_settings(UNIT_DIR / "jenga-edge.service")
    for key, value in {
        "Type": "notify", "NotifyAccess": "main", "ExecReload": "/bin/kill -HUP $MAINPID", "DynamicUser": "yes",
        "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
        "MemoryDenyWriteExecute": "yes", "LockPersonality": "yes", "RestrictRealtime": "yes",
        "CapabilityBoundingSet": "", "AmbientCapabilities": "", "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "StateDirectory": "jenga", "LogsDirectory": "jenga", "RuntimeDirectory": "jenga",
    }.items():  # fmt: skip
        assert unit.get(key) == [value], key
    assert unit["SystemCallFilter"] == ["@system-service", "~@privileged"]
    assert "WatchdogSec" in unit and "ProtectKernelTunables" in unit and "ProtectKernelModules" in unit
    fw = _unit_settings(UNIT_DIR / "jenga-edge.service.d" / "firewall.conf")
    assert fw["AmbientCapabilities"] == fw["CapabilityBoundingSet"] == ["CAP_NET_ADMIN"]
    assert fw["RestrictAddressFamilies"] == ["AF_NETLINK"] and fw["PrivateUsers"] == ["no"]


def _exposure(unit: Path) -> float | None:
    proc = subprocess.run(
        [ANALYZE, "security", "--offline=true", "--no-pager", str(unit)],  # type: ignore[list-item]
        capture_output=True,
        text=True,
        timeout=60,
    )
    m = re.search(r"Overall exposure level for jenga-edge\.service: ([0-9.]+)", proc.stdout)
    return float(m.group(1)) if m else None


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_security_rates_the_unit_ok(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    base = _exposure(_installed_copy(tmp_path / "a", dropins=False))
    if base is None:
        pytest.skip("this systemd-analyze has no security --offline (systemd < 250)")
    with_fw = _exposure(_installed_copy(tmp_path / "b", dropins=True))
    # docs/systemd.md states them: 1.2 and 1.7 with systemd 252 (10 is unprotected; < 2 is "OK")
    assert base <= 1.5 and with_fw is not None and base < with_fw <= 2.0, (base, with_fw)


# ------------------------------------------------------------------ the real agent


def _spawn(cfg: Path, notify: NotifySocket, watchdog_usec: int | None = None, journal: str = "", **kw):
    env = {**os.environ, "NOTIFY_SOCKET": notify.env, "JOURNAL_STREAM": journal}
    if watchdog_usec is not None:
        env["WATCHDOG_USEC"] = str(watchdog_usec)
    return subprocess.Popen(
        [sys.executable, "-m", "jenga_edge.cli", "run", "--config", str(cfg)],
        env=env, cwd=REPO, **{"stdin": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, **kw},
    )  # fmt: skip


def _end(proc: subprocess.Popen, timeout: float = 30.0) -> int:
    try:
        return proc.wait(timeout)
    finally:
        _kill(proc)


def _kill(proc: subprocess.Popen) -> None:
    """The agent this test started, if it still runs (a failed assertion)."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(5)


def test_ready_once_serving_reloading_ready_on_sighup_stopping_at_sigterm(network_bundle, tmp_path, notify_path):
    bundle, _ = network_bundle
    cfg = write_config(tmp_path, bundle, [{"type": "tcp", "host": "127.0.0.1", "port": 0}])
    err = tmp_path / "stderr"
    with open(err, "w") as fh:
        st = os.fstat(fh.fileno())  # stderr is "the journal"
        proc = _spawn(cfg, notify_path, watchdog_usec=1_000_000, stderr=fh, journal=f"{st.st_dev}:{st.st_ino}")
    try:
        ready = notify_path.wait_for("READY")
        # READY says the sources are open: the listener it names accepts at once
        host, port = re.search(r"sources tcp:([0-9.]+):(\d+)", ready["STATUS"]).groups()  # type: ignore[union-attr]
        with socket.create_connection((host, int(port)), timeout=5) as c:
            c.sendall(b"\n".join(events(50)) + b"\n")
        deadline = time.monotonic() + 30
        while "received 50," not in notify_path.messages[-1].get("STATUS", ""):
            assert time.monotonic() < deadline, notify_path.messages[-3:]
            notify_path.recv(1.0)
        cfg.write_text(cfg.read_text().replace("agent:", "agent: [", 1))  # a broken config: the reload fails
        proc.send_signal(signal.SIGHUP)
        reloading = notify_path.wait_for("RELOADING")
        assert int(reloading["MONOTONIC_USEC"]) > 0
        assert notify_path.wait_for("READY")["STATUS"].startswith("serving bundle")  # still serving the old one
        proc.send_signal(signal.SIGTERM)
        notify_path.wait_for("STOPPING")
        assert _end(proc) == 0
    finally:
        _kill(proc)
    lines = err.read_text().splitlines()
    assert all(re.match(r"<[346]>", ln) for ln in lines), lines
    assert any(ln.startswith("<3>reload failed") for ln in lines)
    assert lines[-1].startswith('<6>{"received": 50')  # the summary
    assert not any(re.match(r"<\d>\d{4}-\d\d-\d\d", ln) for ln in lines)  # journald stamps the time


def test_a_tampered_bundle_never_signals_ready(network_bundle, tmp_path, notify_path):
    bundle, _ = network_bundle
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    graph = next(copy.rglob("*.onnx"))
    graph.write_bytes(graph.read_bytes()[:-1] + bytes([graph.read_bytes()[-1] ^ 1]))
    proc = _spawn(write_config(tmp_path, copy, [{"type": "stdin"}]), notify_path)
    assert _end(proc) == 2
    assert notify_path.recv(0.2) is None  # not READY, nor anything else


def test_watchdog_pings_stop_while_the_scoring_loop_is_stuck_and_resume_after(
    network_bundle, tmp_path, notify_abstract
):
    """The dead-letter file is a FIFO nobody reads yet: once its pipe buffer is full the loop
    blocks in the write, the source threads go on; the pings must stop, then resume when the
    FIFO is drained."""
    bundle, _ = network_bundle
    fifo = tmp_path / "dead.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # the agent's open for writing does not block
    cfg = write_config(
        tmp_path, bundle, [{"type": "stdin"}], dead_letter={"path": str(fifo), "fsync": False, "max_bytes": 0}
    )
    proc = _spawn(cfg, notify_abstract, watchdog_usec=200_000, stdin=subprocess.PIPE)
    drained = bytearray()
    drainer = threading.Thread(target=_drain, args=(reader, drained), daemon=True)
    try:
        notify_abstract.wait_for("READY")
        for _ in range(3):  # pings while idle: every 0.1 s
            notify_abstract.wait_for("WATCHDOG", timeout=5)
        junk = b"x" * 4000 + b"\n"  # each a bad_json dead letter of about 4 kB: 800 kB, the pipe holds 64 kB
        writer = threading.Thread(target=_write_and_close, args=(proc.stdin, junk * 200), daemon=True)
        writer.start()
        assert _gap_in_pings(notify_abstract, gap=1.0, within=20), "the pings went on while the loop was stuck"
        assert proc.poll() is None
        drainer.start()
        notify_abstract.wait_for("WATCHDOG", timeout=10)  # moving again: pinging again
        writer.join(10)
        notify_abstract.wait_for("STOPPING")  # the end of stdin: it stops by itself
        assert _end(proc) == 0
        drainer.join(10)
    finally:
        _kill(proc)
        os.close(reader)
    assert drained.count(b'"reason":"bad_json"') == 200  # every event accounted for


def _write_and_close(pipe, data: bytes) -> None:
    try:
        pipe.write(data)
        pipe.close()
    except (BrokenPipeError, ValueError):
        pass


def _gap_in_pings(notify: NotifySocket, gap: float, within: float) -> bool:
    """True once `gap` seconds pass with no WATCHDOG=1 (pinging every 0.1 s, that is a stall)."""
    deadline = time.monotonic() + within
    last = time.monotonic()
    while time.monotonic() < deadline:
        msg = notify.recv(0.1)
        if msg is not None and "WATCHDOG" in msg:
            last = time.monotonic()
        elif time.monotonic() - last >= gap:
            return True
    return False


def _drain(fd: int, into: bytearray, limit_s: float = 30.0) -> None:
    """Read the FIFO until its writer (the agent) has closed it, for `limit_s` at most."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:  # the writer is still there, nothing to read now
            time.sleep(0.01)
            continue
        if not chunk:
            return
        into.extend(chunk)


# ------------------------------------------------------------------ MemoryDenyWriteExecute


def _mdwe_filter() -> bytes:
    """systemd's MemoryDenyWriteExecute as the seccomp filter it installs (systemd <= 255, x86_64):
    mmap asking for write and execute, mprotect/pkey_mprotect asking for execute, shmat with
    SHM_EXEC fail with EPERM."""
    ld, jeq, ret, and_ = 0x20, 0x15, 0x06, 0x54  # BPF_LD|W|ABS, BPF_JMP|JEQ|K, BPF_RET|K, BPF_ALU|AND|K
    allow, eperm = 0x7FFF0000, 0x00050000 | 1

    def op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
        return struct.pack("HBBI", code, jt, jf, k)

    arg2 = 16 + 2 * 8  # seccomp_data.args[2], the low 32 bits (little endian)
    return b"".join([
        op(ld, 4), op(jeq, 0xC000003E, jt=1), op(ret, allow),  # 0-2: x86_64 only
        op(ld, 0),  # 3: the syscall number
        op(jeq, 9, jt=4), op(jeq, 10, jt=7), op(jeq, 329, jt=6), op(jeq, 30, jt=9), op(ret, allow),  # 4-8
        op(ld, arg2), op(and_, 6), op(jeq, 6, jt=9), op(ret, allow),  # 9-12 mmap: PROT_WRITE|PROT_EXEC
        op(ld, arg2), op(and_, 4), op(jeq, 4, jt=5), op(ret, allow),  # 13-16 mprotect: PROT_EXEC
        op(ld, arg2), op(and_, 0o100000), op(jeq, 0o100000, jt=1), op(ret, allow),  # 17-20 shmat: SHM_EXEC
        op(ret, eperm),  # 21
    ])  # fmt: skip


def _install_mdwe() -> None:  # runs in the child, before exec
    code = _mdwe_filter()
    buf = ctypes.create_string_buffer(code, len(code))

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    prog = Prog(len(code) // 8, ctypes.addressof(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    # PR_SET_NO_NEW_PRIVS, then PR_SET_SECCOMP with SECCOMP_MODE_FILTER
    if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.prctl(22, 2, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "seccomp filter refused")


@pytest.mark.skipif(platform.machine() != "x86_64" or sys.platform != "linux", reason="the filter is x86_64 Linux")
def test_the_agent_scores_under_memory_deny_write_execute(network_bundle, tmp_path):
    probe = "import mmap; mmap.mmap(-1, 4096, prot=mmap.PROT_WRITE | mmap.PROT_EXEC)"
    denied = subprocess.run([sys.executable, "-c", probe], preexec_fn=_install_mdwe, capture_output=True, timeout=30)
    assert b"PermissionError" in denied.stderr  # the filter holds: writable and executable memory is refused
    bundle, _ = network_bundle
    cfg = write_config(tmp_path, bundle, [{"type": "stdin"}])
    proc = subprocess.run(
        [sys.executable, "-m", "jenga_edge.cli", "run", "--config", str(cfg)],
        input=b"\n".join(events(300)) + b"\n",
        capture_output=True,
        cwd=REPO,
        timeout=60,
        preexec_fn=_install_mdwe,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert '"scored": 300' in proc.stderr.decode().splitlines()[-1]
