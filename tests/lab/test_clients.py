"""The benign clients' building blocks: DNS queries on the wire, bounded clocks, Poisson pauses."""

from __future__ import annotations

import random
import statistics
import struct
import time

from lab import clients


def decode_qname(packet: bytes) -> tuple[str, int]:
    i, parts = 12, []
    while packet[i]:
        parts.append(packet[i + 1 : i + 1 + packet[i]].decode())
        i += packet[i] + 1
    qtype, qclass = struct.unpack(">HH", packet[i + 1 : i + 5])
    assert qclass == 1 and i + 5 == len(packet)
    return ".".join(parts), qtype


def test_a_dns_query_is_a_well_formed_recursive_question():
    pkt = clients.dns_query("www.lab.example", 28, random.Random(1))
    _id, flags, qd, an, ns, ar = struct.unpack(">HHHHHH", pkt[:12])
    assert (flags, qd, an, ns, ar) == (0x0100, 1, 0, 0, 0)
    assert decode_qname(pkt) == ("www.lab.example", 28)


def test_names_are_mostly_the_labs_with_some_unknown_and_some_outside():
    site = {"names": ["www.lab.example"], "zone": "lab.example"}
    rng = random.Random(4)
    names = [clients.pick_name(site, rng)[0] for _ in range(2000)]
    known = sum(n == "www.lab.example" for n in names) / len(names)
    outside = sum(not n.endswith("lab.example") for n in names) / len(names)
    assert 0.75 < known < 0.85 and 0.07 < outside < 0.13


def test_pauses_have_the_asked_mean():
    rng = random.Random(2)
    assert abs(statistics.mean(clients.think(rng, 6) for _ in range(20000)) - 10.0) < 0.3


def test_the_clock_never_sleeps_past_its_deadline():
    clock = clients.Clock(0.2)
    start = time.monotonic()
    assert clock.sleep(0.05) is True
    assert clock.sleep(30) is False
    assert time.monotonic() - start < 2.0


def test_an_unknown_behaviour_is_a_usage_error(capsys):
    assert clients.main(["rm", "{}"]) == 2
    assert "usage: python -m lab.clients" in capsys.readouterr().err
