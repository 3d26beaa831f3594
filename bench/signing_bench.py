"""What checking a bundle signature costs the agent, per Ed25519 library.

Each candidate runs in fresh processes that first import what an agent has
loaded when it verifies a bundle (numpy, msgspec, onnxruntime), then time the
library's import and one verification and read the growth of resident memory.
Medians of --runs processes. A candidate that is not installed is reported as
such; to compare one without installing it in the venv, put it in a folder
(`pip install --target DIR cryptography`) and pass --path cryptography=DIR.

    python bench/signing_bench.py --path cryptography=/tmp/c --runs 15
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

PROBE = r"""
import os, sys, time
import numpy, msgspec, onnxruntime  # what an agent has loaded before it verifies a bundle
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
lib, sig, pub, msg = sys.argv[1], bytes.fromhex(sys.argv[2]), bytes.fromhex(sys.argv[3]), b"m" * 64
r0, t0 = rss(), time.perf_counter()
if lib == "cryptography":
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    t1 = time.perf_counter()
    Ed25519PublicKey.from_public_bytes(pub).verify(sig, msg)
else:
    from nacl.signing import VerifyKey
    t1 = time.perf_counter()
    VerifyKey(pub).verify(msg, sig)
t2 = time.perf_counter()
print((t1 - t0) * 1e3, (t2 - t1) * 1e3, rss() - r0)
"""

KEYS = {
    "pynacl": "from nacl.signing import SigningKey\nk = SigningKey.generate()\n"
    "print(k.sign(b'm' * 64).signature.hex(), bytes(k.verify_key).hex())",
    "cryptography": "from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey\n"
    "from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat\n"
    "k = Ed25519PrivateKey.generate()\n"
    "print(k.sign(b'm' * 64).hex(), k.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex())",
}


def measure(lib: str, path: str | None, runs: int) -> dict[str, object]:
    env = dict(os.environ)
    if path:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [path, env.get("PYTHONPATH")]))
    made = subprocess.run([sys.executable, "-c", KEYS[lib]], env=env, capture_output=True, text=True, timeout=60)
    if made.returncode != 0:
        return {"library": lib, "installed": False}
    sig, pub = made.stdout.split()
    rows = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", PROBE, lib, sig, pub],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        rows.append([float(x) for x in out.stdout.split()])
    imp, ver, mem = (statistics.median(c) for c in zip(*rows))
    return {"library": lib, "installed": True, "import_ms": imp, "first_verify_ms": ver, "rss_delta_mb": mem}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--path", action="append", default=[], metavar="LIB=DIR", help="where a candidate is installed")
    ap.add_argument("--runs", type=int, default=9, help="processes per candidate (medians)")
    ap.add_argument("--json", default="build/bench/signing_bench.json", help="write the results here")
    args = ap.parse_args()
    paths = dict(p.split("=", 1) for p in args.path)
    results = [measure(lib, paths.get(lib), args.runs) for lib in KEYS]
    for r in results:
        if r["installed"]:
            print(
                f"{r['library']:>12}: import {r['import_ms']:.1f} ms, first verify {r['first_verify_ms']:.2f} ms, "
                f"RSS +{r['rss_delta_mb']:.1f} MB (median of {args.runs})"
            )
        else:
            print(f"{r['library']:>12}: not installed")
    if args.json:
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
