"""The traffic lab: real attack and benign traffic in network namespaces of its own.

    python -m lab check lab/scenarios/corpus.yaml      # tools present? host safe?
    python -m lab run lab/scenarios/corpus.yaml -o build/lab/corpus
    python -m lab label EVE TRUTH -o OUT                # label an eve.json again

A run builds namespaces joined by a bridge that lives in a namespace of its own
(topology.py), starts the victim's services (services.py), runs the scenario's
steps on schedule (runner.py; one module per tool in tools/), captures on the
bridge with tcpdump, runs Suricata offline on the capture (suricata.py), and
labels every record from the ground truth of who ran what, when (labels.py).
The host's own interfaces, addresses, routes and nft ruleset are never touched
(safety.py checks before and after).
"""
