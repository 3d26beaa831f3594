"""Run a daemon with the host files it would write replaced by files of the lab's own.

    python -m lab.isolate --bind WORK/wtmp:/var/log/wtmp [--bind ...] -- /usr/sbin/sshd -D ...

sshd records logins and failed guesses in utmp, wtmp, btmp and lastlog: a brute-force
step would otherwise write thousands of entries into the host's files. This makes a new
mount namespace (propagation private, so nothing leaks back), bind-mounts each lab file
over its host path (only where the host path exists: the daemon never creates them),
and execs the daemon. The host's files are never opened.
"""

from __future__ import annotations

import ctypes
import os
import sys

CLONE_NEWNS = 0x00020000
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000

# Files sshd writes on the host: logins (utmp, wtmp, lastlog) and failed logins (btmp).
LOGIN_RECORDS = ("/var/run/utmp", "/var/log/wtmp", "/var/log/btmp", "/var/log/lastlog")


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise SystemExit(f"lab.isolate: {what} failed: {os.strerror(err)}")


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print("usage: python -m lab.isolate --bind SRC:DST ... -- PROGRAM ARGS", file=sys.stderr)
        return 2
    cut = argv.index("--")
    opts, command = argv[:cut], argv[cut + 1 :]
    binds = [opts[i + 1].split(":", 1) for i, o in enumerate(opts) if o == "--bind"]
    libc = ctypes.CDLL(None, use_errno=True)
    _check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "making / private")
    for src, dst in binds:
        if not os.path.exists(dst):
            continue
        with open(src, "ab"):
            pass  # the lab's copy exists, empty
        _check(libc.mount(src.encode(), dst.encode(), None, MS_BIND, None), f"bind {src} over {dst}")
    os.execvp(command[0], command)
    return 127  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
