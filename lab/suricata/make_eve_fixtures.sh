#!/usr/bin/env bash
# Make the committed eve.json test fixtures from the real packet captures.
#
#   lab/suricata/make_eve_fixtures.sh [PCAP_DIR] [OUT_DIR]
#
#   PCAP_DIR  default: ../shared/datasets/pcaps (relative to the repository root)
#   OUT_DIR   default: tests/fixtures/suricata  (relative to the repository root)
#
# Runs Suricata offline once per *.pcap in PCAP_DIR with lab/suricata/minimal.yaml
# (no rules, eve-log only) and writes OUT_DIR/<pcap stem>.eve.json.gz (gzip -n -9)
# plus OUT_DIR/README.md (version, command, config, per-fixture counts, provenance).
#
# The SYN flood capture is cut to the flows that start in its first
# SYNFLOOD_SECONDS seconds of capture time (see README.md); every other capture
# is kept whole. Record order is always the order Suricata wrote.
#
# Needs: suricata (Debian bookworm-backports 7.0.10 was used), python3, gzip, sha256sum.
set -euo pipefail

if ! command -v suricata >/dev/null 2>&1; then
    echo "make_eve_fixtures.sh: suricata not found on PATH (install it from bookworm-backports, see ../shared/datasets/pcaps/README.md)" >&2
    exit 2
fi

repo_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$repo_root"

pcap_dir=${1:-../shared/datasets/pcaps}
out_dir=${2:-tests/fixtures/suricata}
config=lab/suricata/minimal.yaml
# Seconds of capture time (from the first packet of the capture) kept for the SYN flood.
SYNFLOOD_SECONDS=0.4
SYNFLOOD_GLOB='*synflood*'

[[ -d $pcap_dir ]] || { echo "make_eve_fixtures.sh: no pcap directory $pcap_dir" >&2; exit 2; }
shopt -s nullglob
pcaps=("$pcap_dir"/*.pcap)
shopt -u nullglob
(( ${#pcaps[@]} > 0 )) || { echo "make_eve_fixtures.sh: no .pcap files in $pcap_dir" >&2; exit 2; }

mkdir -p "$out_dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Timestamps in eve.json carry the local UTC offset: pin it.
export TZ=UTC
version=$(suricata -V)

for pcap in "${pcaps[@]}"; do
    stem=$(basename "$pcap" .pcap)
    logdir="$work/$stem"
    mkdir "$logdir"          # fresh -l dir: Suricata appends to an existing eve.json
    suricata -c "$config" -r "$pcap" -l "$logdir" -k none --runmode single \
        >"$logdir/suricata.out" 2>&1 || { cat "$logdir/suricata.out" >&2; exit 1; }
    eve="$logdir/eve.json"
    # shellcheck disable=SC2254
    case "$stem" in
        $SYNFLOOD_GLOB)
            python3 - "$pcap" "$eve" "$SYNFLOOD_SECONDS" >"$logdir/eve.cut.json" <<'PY'
import json, struct, sys
from datetime import datetime

pcap, eve, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
with open(pcap, "rb") as f:
    head = f.read(24 + 16)
magic = head[:4]
endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
nano = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
sec, frac = struct.unpack(endian + "II", head[24:32])
t0 = sec + frac / (1e9 if nano else 1e6)          # first packet of the capture
cutoff = t0 + seconds

def ts(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()

lines = open(eve).read().splitlines()
keep_ids = set()
for line in lines:
    r = json.loads(line)
    if r["event_type"] == "flow" and ts(r["flow"]["start"]) < cutoff:
        keep_ids.add(r["flow_id"])
# Keep every record of a kept flow (flow, netflow, app-layer), in Suricata's order.
for line in lines:
    if json.loads(line).get("flow_id") in keep_ids:
        print(line)
PY
            eve="$logdir/eve.cut.json"
            ;;
    esac
    gzip -n -9 -c "$eve" >"$out_dir/$stem.eve.json.gz"
    echo "$out_dir/$stem.eve.json.gz: $(wc -l <"$eve") records"
done

python3 - "$pcap_dir" "$out_dir" "$config" "$version" "$SYNFLOOD_SECONDS" "$SYNFLOOD_GLOB" <<'PY'
import collections, csv, fnmatch, gzip, hashlib, json, os, re, sys

pcap_dir, out_dir, config, version, syn_seconds, syn_glob = sys.argv[1:]
labels = {}
labels_csv = os.path.join(pcap_dir, "labels.csv")
if os.path.exists(labels_csv):
    with open(labels_csv, newline="") as f:
        labels = {row["file"]: row for row in csv.DictReader(f)}
src_readme = os.path.join(pcap_dir, "README.md")
src_text = open(src_readme).read() if os.path.exists(src_readme) else ""

def section(text, title):
    m = re.search(r"^## " + re.escape(title) + r"\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    return m.group(1).strip() if m else ""

def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()

# zeek/zeek COPYING (BSD-style), reproduced for the Zeek-derived fixtures.
ZEEK_COPYING = """> Copyright (c) 1995-now, The Regents of the University of California
> through the Lawrence Berkeley National Laboratory and the
> International Computer Science Institute. All rights reserved.
>
> Redistribution and use in source and binary forms, with or without
> modification, are permitted provided that the following conditions are met:
>
> (1) Redistributions of source code must retain the above copyright
>     notice, this list of conditions and the following disclaimer.
>
> (2) Redistributions in binary form must reproduce the above copyright
>     notice, this list of conditions and the following disclaimer in the
>     documentation and/or other materials provided with the distribution.
>
> (3) Neither the name of the University of California, Lawrence Berkeley
>     National Laboratory, U.S. Dept. of Energy, International Computer
>     Science Institute, nor the names of contributors may be used to endorse
>     or promote products derived from this software without specific prior
>     written permission.
>
> THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS "AS IS"
> AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE
> IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE
> ARE DISCLAIMED.  IN NO EVENT SHALL THE COPYRIGHT OWNER OR CONTRIBUTORS BE
> LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL, SPECIAL, EXEMPLARY, OR
> CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT LIMITED TO, PROCUREMENT OF
> SUBSTITUTE GOODS OR SERVICES; LOSS OF USE, DATA, OR PROFITS; OR BUSINESS
> INTERRUPTION) HOWEVER CAUSED AND ON ANY THEORY OF LIABILITY, WHETHER IN
> CONTRACT, STRICT LIABILITY, OR TORT (INCLUDING NEGLIGENCE OR OTHERWISE)
> ARISING IN ANY WAY OUT OF THE USE OF THIS SOFTWARE, EVEN IF ADVISED OF THE
> POSSIBILITY OF SUCH DAMAGE."""

types = ["flow", "netflow", "http", "dns", "tls", "ssh", "ftp", "anomaly"]
out = []
w = out.append
w("# Suricata eve.json fixtures from real packet captures")
w("")
w("Generated by `lab/suricata/make_eve_fixtures.sh` (do not edit by hand; rerun the script).")
w("Each `<pcap stem>.eve.json.gz` is the `eve.json` that Suricata wrote for one capture in")
w("`../shared/datasets/pcaps/` (unmodified, except the SYN flood cut below), compressed with")
w("`gzip -n -9`. One JSON object per line; the files mix `flow`, `netflow`, app-layer")
w("(`http`, `dns`, `tls`, `ssh`, `ftp`) and")
w("`anomaly` records, so a consumer must filter on `event_type`.")
w("")
w(f"- Suricata: `{version}` (Debian bookworm-backports package `suricata`)")
w("- Command, once per capture, each with a fresh empty log dir (Suricata appends), `TZ=UTC`:")
w("")
w("  ```sh")
w(f"  TZ=UTC suricata -c {config} -r <pcap> -l <fresh dir> -k none --runmode single")
w("  ```")
w("")
w(f"- SYN flood cut: for files matching `{syn_glob}` only the flows whose `flow.start` lies in")
w(f"  the first {syn_seconds} s of capture time (from the capture's first packet) are kept, with")
w("  all their records (`flow` and `netflow`), in the order Suricata wrote them. The whole")
w("  capture (23.7 s, 37,669 flows) gives a 3.2 MB gzip; the flood is very bursty, most flows")
w("  start within its first second (the `flow` count below is what is kept). All other")
w("  captures are complete.")
w("- Determinism: the record *contents* are identical from run to run, but Suricata seeds its")
w("  flow hash randomly at start-up, so `flow_id` values and the order of the flows flushed at")
w("  end of file (`flow.reason: \"shutdown\"`, i.e. nearly all) change on every run. The gzip")
w("  bytes are therefore reproducible only for an identical `eve.json`; compare fixtures")
w("  as sets of records without `flow_id`.")
w("- Record shape (Suricata 7.0.10): timestamps look like `2011-09-27T18:07:21.100604+0000`;")
w("  `proto` is upper case (`TCP`, `UDP`); `flow` records carry `flow.start`/`flow.end`/`age`/")
w("  `state`/`reason` and omit `app_proto` when none was detected, while `netflow` records say")
w("  `\"app_proto\": \"unknown\"`; each flow has one `netflow` record per direction that saw")
w("  packets (the reply one has `src_ip` = the responder) and both carry the flow's")
w("  `start`/`end`; `anomaly` and app-layer records carry the packet's direction, `pcap_cnt`")
w("  and `pkt_src`.")
w("")
w("## Fixtures")
w("")
w("| fixture | bytes | source pcap | pcap sha256 | label | attacker (`src_ip`) | records | " + " | ".join(f"`{t}`" for t in types) + " | other |")
w("|---|---:|---|---|---|---|---:|" + "---:|" * len(types) + "---|")
details = []
total = 0
for name in sorted(os.listdir(out_dir)):
    if not name.endswith(".eve.json.gz"):
        continue
    path = os.path.join(out_dir, name)
    stem = name[: -len(".eve.json.gz")]
    pcap = stem + ".pcap"
    counts = collections.Counter()
    with gzip.open(path, "rt") as f:
        for line in f:
            counts[json.loads(line)["event_type"]] += 1
    size = os.path.getsize(path)
    total += size
    row = labels.get(pcap, {})
    attacker = (row.get("attacker_src_ip") or "none (benign)").replace("*", "\\*")
    other = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()) if k not in types) or ""
    cut = f" (first {syn_seconds} s)" if fnmatch.fnmatch(stem, syn_glob) else ""
    w(f"| `{name}`{cut} | {size:,} | `{pcap}` | `{sha256(os.path.join(pcap_dir, pcap))}` | "
      f"{row.get('label', '?')} {row.get('attack_type', '')} | {attacker} | {sum(counts.values()):,} | "
      + " | ".join(f"{counts.get(t, 0):,}" for t in types) + f" | {other} |")
    if row:
        details.append(f"- `{pcap}`: `{row['source_repo']}`, `{row['source_path']}` "
                       f"(snapshot `{row['source_commit']}`); licence: {row['licence']}.")
w("")
w(f"Total: {total:,} bytes.")
w("")
w("## Provenance and licences")
w("")
w("The captures were not made by this project. Per capture (from `labels.csv`):")
w("")
out.extend(details)
w("")
w("Copied from `../shared/datasets/pcaps/README.md`, section \"Sources and licences\":")
w("")
w(section(src_text, "Sources and licences"))
w("")
w("The SYN flood capture comes from L.F. Haaijer, *DDoS Packet Capture Collection* (2022),")
w("`StopDDoS/packet-captures`, whose README says: \"These captures may be freely used to build")
w("and improve DDoS Protection systems. Attribution is not required, but greatly appreciated.\"")
w("The other captures are Zeek test traces (`zeek/zeek`, BSD-style licence, `COPYING`).")
w("As that licence asks, its notice, conditions and disclaimer are kept here:")
w("")
w(ZEEK_COPYING)
w("")
w(f"## Config (`{config}`)")
w("")
w("```yaml")
w(open(config).read().rstrip())
w("```")
with open(os.path.join(out_dir, "README.md"), "w") as f:
    f.write("\n".join(out) + "\n")
print(f"{out_dir}/README.md written; fixtures total {total:,} bytes")
PY
