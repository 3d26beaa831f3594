#!/usr/bin/env bash
# make soc-demo, step 2: Suricata on a real capture when it is installed (else the committed
# eve.json of the same capture), then the agent with the SOC bundle, then its alerts.
#   examples/soc_demo.sh [BIN_DIR]     (BIN_DIR: the venv's bin, default .venv/bin)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=${1:-.venv/bin}
capture=attack_scan_nmap-subnet-80-443
pcap=${PCAP:-../shared/datasets/pcaps/$capture.pcap}   # PCAP=/nonexistent: use the committed eve.json
out=build/soc
rm -rf "$out/suricata" "$out/alerts.jsonl" "$out/alerts.db" "$out/dead_letter.jsonl"
if command -v suricata >/dev/null 2>&1 && [[ -f $pcap ]]; then
    echo "=== Suricata $(suricata -V | awk '{print $5}') on $pcap (lab/suricata/lab.yaml) ==="
    mkdir -p "$out/suricata"
    TZ=UTC suricata -c lab/suricata/lab.yaml -r "$pcap" -l "$out/suricata" -k none --runmode single >"$out/suricata/suricata.out" 2>&1
    eve=$out/suricata/eve.json
else
    echo "=== Suricata or the capture is absent: the committed eve.json of $capture ==="
    mkdir -p "$out/suricata"
    gzip -dc "tests/fixtures/suricata/$capture.eve.json.gz" >"$out/suricata/eve.json"
    eve=$out/suricata/eve.json
fi
echo "$(wc -l <"$eve") records; the attacker in this capture is 192.168.1.71 (labels.csv)"
echo "=== the agent (torch-free): SOC model, counting rules, dry-run nft block ==="
"$bin/jenga-edge" run --config examples/agent_soc_demo.yaml <"$eve"
echo "=== alerts, newest first ==="
"$bin/jenga-edge" alerts --db "$out/alerts.db" --since 1000d --limit 10
echo "=== what the firewall action would run (dry run: nothing was changed) ==="
"$bin/python" - "$out/alerts.jsonl" <<'PY'
import json, shlex, sys
seen = set()
for line in open(sys.argv[1]):
    alert = json.loads(line)
    for act in alert.get("actions", []):
        cmd = shlex.join(act.get("argv") or [])
        if act.get("dry_run") and cmd not in seen:
            seen.add(cmd)
            print(f"{alert['rule']}: {cmd}")
PY
