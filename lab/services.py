"""The victim's real services, each configured to live in the lab's work folder.

http: nginx; ssh: OpenSSH's sshd (key login as root for the benign users; every
password guess refused: no password login for root, no other user allowed);
ftp: vsftpd (anonymous only: downloads, passive ports PASV; a login name other
than anonymous is refused, so no host account is ever tried);
dns: dnsmasq, authoritative for lab.example; dns_tunnel: iodined behind
dnsmasq for t.lab.example. Every daemon runs in the foreground so the lab holds
its PID. The site (pages, objects, files, names) is generated from the seed and
described in site.json, which the benign clients read.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from .errors import LabError
from .isolate import LOGIN_RECORDS

SERVICE_BINARIES: dict[str, tuple[str, ...]] = {
    "http": ("nginx",),
    "ssh": ("sshd", "ssh-keygen"),
    "ftp": ("vsftpd",),
    "dns": ("dnsmasq",),
    "dns_tunnel": ("iodined",),
}
PORTS = {"http": ("tcp", 80), "ssh": ("tcp", 22), "ftp": ("tcp", 21), "dns": ("udp", 53)}
PASV = (40000, 40199)
PRIVSEP = Path("/run/sshd")
ZONE = "lab.example"
TUNNEL_DOMAIN = f"t.{ZONE}"
TUNNEL_SERVER = "172.31.77.1"
TUNNEL_NET = "172.31.77.0/27"
TUNNEL_PASSWORD = "jenga-lab-tunnel"  # the lab's own tunnel, reachable only inside the lab


def which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/local/sbin")


def make_site(site: Path, seed: int, address: str) -> dict[str, object]:
    """Web pages with objects of many sizes, FTP files, update packages and DNS names."""
    rng = random.Random(seed)
    www, ftp = site / "www", site / "ftp"
    for d in (www / "img", www / "static", www / "news", www / "pkg", ftp / "pub", ftp / "docs"):
        d.mkdir(parents=True, exist_ok=True)

    def blob(path: Path, size: int) -> str:
        path.write_bytes(rng.randbytes(size))
        return "/" + str(path.relative_to(www if path.is_relative_to(www) else ftp))

    objects = [blob(www / "img" / f"p{i}.jpg", int(rng.lognormvariate(10, 1.2)) + 500) for i in range(60)]
    objects += [blob(www / "static" / f"app{i}.js", int(rng.lognormvariate(9.5, 0.8)) + 200) for i in range(10)]
    pages = []
    for i in range(40):
        path = www / "news" / f"{i}.html"
        path.write_text("<html><body>" + "lorem ipsum " * rng.randint(50, 4000) + "</body></html>")
        pages.append({"path": f"/news/{i}.html", "objects": rng.sample(objects, rng.randint(2, 14))})
    (www / "index.html").write_text("<html><body>lab</body></html>")
    pages.append({"path": "/", "objects": rng.sample(objects, 6)})
    updates = [blob(www / "pkg" / f"update-{i}.bin", rng.randint(200_000, 3_000_000)) for i in range(4)]
    files = [blob(ftp / "pub" / f"file{i}.dat", int(rng.lognormvariate(11, 1.5)) + 100) for i in range(30)]
    files += [blob(ftp / "docs" / f"doc{i}.txt", rng.randint(500, 50_000)) for i in range(10)]
    names = ["www", "mail", "ftp", "ns1", "intranet", "wiki", "git", "update", "time", "files", "db", "backup"]
    site_map: dict[str, object] = {
        "address": address, "pages": pages, "updates": updates, "ftp_files": files, "ftp_dirs": ["/pub", "/docs"],
        "names": [f"{n}.{ZONE}" for n in names], "zone": ZONE, "client_key": str(site / "client_key"),
        "uploads": str(site / "uploads"), "tunnel": {"domain": TUNNEL_DOMAIN, "server": TUNNEL_SERVER,
                                                     "password": TUNNEL_PASSWORD},
    }  # fmt: skip
    (site / "uploads").mkdir(exist_ok=True)
    (site / "site.json").write_text(json.dumps(site_map, indent=1))
    return site_map


def commands(services: Sequence[str], work: Path, site: Path, address: str) -> dict[str, list[str]]:
    """name -> argv of each daemon (foreground), their configs written under `work`."""
    work.mkdir(parents=True, exist_ok=True)
    out: dict[str, list[str]] = {}
    for svc in services:
        out[svc] = BUILDERS[svc](work, site, address, services)
    return out


def _nginx(work: Path, site: Path, address: str, services: Sequence[str]) -> list[str]:
    tmp = work / "nginx"
    tmp.mkdir(exist_ok=True)
    conf = work / "nginx.conf"
    # Through the tunnel, the victim's web server answers on the tunnel's address too.
    tunnel = f"listen {TUNNEL_SERVER}:80;" if "dns_tunnel" in services else ""
    conf.write_text(f"""user root;
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log {tmp}/access.log;
    client_body_temp_path {tmp}/body; proxy_temp_path {tmp}/proxy; fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi; scgi_temp_path {tmp}/scgi;
    keepalive_timeout 15;
    server {{
        listen {address}:80;
        {tunnel}
        root {site}/www;
        location = /health {{ return 200 "ok\\n"; }}
    }}
}}
""")
    return [which("nginx") or "nginx", "-c", str(conf), "-e", str(tmp / "error.log")]


def _sshd(work: Path, site: Path, address: str, services: Sequence[str]) -> list[str]:
    key, client = work / "ssh_host_ed25519_key", site / "client_key"
    for path, comment in ((key, "lab-host"), (client, "lab-client")):
        if not path.exists():
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                           check=True, timeout=30)  # fmt: skip
    (work / "authorized_keys").write_text((site / "client_key.pub").read_text())
    if not PRIVSEP.exists():  # sshd's privilege separation directory; removed at the end (runner)
        PRIVSEP.mkdir(mode=0o755)
        (work / "made-run-sshd").touch()
    conf = work / "sshd_config"
    conf.write_text(f"""Port 22
ListenAddress {address}
AllowUsers root
AcceptEnv HISTFILE
HostKey {key}
PidFile {work}/sshd.pid
AuthorizedKeysFile {work}/authorized_keys
PermitRootLogin prohibit-password
PrintLastLog no
PasswordAuthentication yes
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
MaxStartups 200:30:400
LogLevel INFO
Subsystem sftp internal-sftp
""")
    # Every password guess fails: root may log in by key only, and no other user may log in
    # at all (AllowUsers), so a host account's password is never tried for real. Login
    # records go to the lab's own files (lab/isolate.py), never the host's.
    binds = [a for path in LOGIN_RECORDS for a in ("--bind", f"{work}/{Path(path).name}:{path}")]
    return [sys.executable, "-m", "lab.isolate", *binds, "--",
            which("sshd") or "/usr/sbin/sshd", "-D", "-e", "-f", str(conf)]  # fmt: skip


def _vsftpd(work: Path, site: Path, address: str, services: Sequence[str]) -> list[str]:
    empty = work / "vsftpd-empty"
    empty.mkdir(exist_ok=True)
    empty.chmod(0o755)
    conf = work / "vsftpd.conf"
    conf.write_text(f"""listen=YES
listen_address={address}
background=NO
anonymous_enable=YES
no_anon_password=YES
anon_root={site}/ftp
local_enable=NO
write_enable=NO
pasv_enable=YES
pasv_min_port={PASV[0]}
pasv_max_port={PASV[1]}
secure_chroot_dir={empty}
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
xferlog_enable=YES
vsftpd_log_file={work}/vsftpd.log
pam_service_name=vsftpd
max_clients=400
max_per_ip=100
""")
    conf.chmod(0o600)
    return [which("vsftpd") or "vsftpd", str(conf)]


def _dnsmasq(work: Path, site: Path, address: str, services: Sequence[str]) -> list[str]:
    names = json.loads((site / "site.json").read_text())["names"]
    records = [f"--host-record={n},{address}" for n in names]
    return [
        which("dnsmasq") or "dnsmasq", "-k", "--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--no-poll",
        "--bind-interfaces", f"--listen-address={address}", "--port=53", f"--pid-file={work}/dnsmasq.pid",
        "--user=root", "--group=root", f"--log-facility={work}/dnsmasq.log", "--log-queries",
        f"--local=/{ZONE}/", f"--server=/{TUNNEL_DOMAIN}/127.0.0.1#5353",
        f"--txt-record=info.{ZONE},lab", f"--mx-host={ZONE},mail.{ZONE}", *records,
    ]  # fmt: skip


def _iodined(work: Path, site: Path, address: str, services: Sequence[str]) -> list[str]:
    return [which("iodined") or "iodined", "-f", "-c", "-l", "127.0.0.1", "-p", "5353", "-P", TUNNEL_PASSWORD,
            f"{TUNNEL_SERVER}/27", TUNNEL_DOMAIN]  # fmt: skip


BUILDERS = {"http": _nginx, "ssh": _sshd, "ftp": _vsftpd, "dns": _dnsmasq, "dns_tunnel": _iodined}
# iodined first: nginx listens on the tunnel address too, so the tunnel must exist first.
ORDER = ("dns_tunnel", "dns", "http", "ssh", "ftp")


def ready_check(svc: str, address: str) -> list[str] | None:
    """argv run in the victim's namespace that exits 0 once `svc` answers, or None (no check)."""
    if svc not in PORTS:  # the tunnel: up once dns0 has its address (nginx listens on it)
        return ["python3", "-c", "import subprocess,sys;o=subprocess.run(['ip','-4','-o','addr','show','dev','dns0'],"
                "capture_output=True,text=True).stdout;sys.exit(0 if ' inet ' in o else 1)"]  # fmt: skip
    proto, port = PORTS[svc]
    code = (
        f"import socket;s=socket.create_connection(({address!r},{port}),1)"
        if proto == "tcp"
        else f"import socket;s=socket.socket(2,2);s.settimeout(1);s.sendto(bytes.fromhex("
        f"'12340100000100000000000003777777036c6162076578616d706c650000010001'),({address!r},{port}));s.recv(512)"
    )
    return ["python3", "-c", code]


def wait_ready(run_in_ns: list[str], svc: str, address: str, log: Path, timeout: float = 20.0) -> None:
    argv = ready_check(svc, address)
    if argv is None:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run([*run_in_ns, *argv], capture_output=True, timeout=10, check=False).returncode == 0:
            return
        time.sleep(0.3)
    raise LabError(f"the victim's {svc} service did not come up within {timeout:g} s (see {log})")


__all__ = ["SERVICE_BINARIES", "commands", "make_site", "wait_ready"]
