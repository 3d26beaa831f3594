"""A small generated text dataset for the text tests: DNS-like names, DGA vs benign.

DGA names come from two made-up families (random consonants and digits; hex runs),
benign names from dictionary-ish syllables, so a byte model separates them in a
couple of epochs. Each row also has a numeric column (`qlen`, the query's length
plus noise) and a second text column (`sni`) for the mixed text + tabular tests."""

from __future__ import annotations

import json
import random
from pathlib import Path

CONSONANTS = "bcdfghjklmnpqrstvwxz"
SYLLABLES = ["man", "shop", "news", "mail", "cloud", "data", "home", "book", "line", "web", "star", "net", "blue"]
TLDS = [".com", ".net", ".org", ".io"]


def _dga(rng: random.Random, family: str) -> str:
    if family == "consonant":
        body = "".join(rng.choice(CONSONANTS + "0123456789") for _ in range(rng.randint(10, 18)))
    else:
        body = "".join(rng.choice("0123456789abcdef") for _ in range(rng.randint(12, 20)))
    return body + rng.choice(TLDS)


def _benign(rng: random.Random) -> str:
    name = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3)))
    prefix = rng.choice(["", "www.", "api.", "MAIL."])  # upper case: normalize dns folds it
    return prefix + name + rng.choice(TLDS) + rng.choice(["", "."])


def names(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        if rng.random() < 0.5:
            family = rng.choice(["consonant", "hex"])
            domain, label = _dga(rng, family), "dga"
        else:
            domain, label, family = _benign(rng), "benign", None
        row = {"domain": domain, "label": label, "qlen": len(domain) + rng.gauss(0, 2), "sni": "tls." + domain}
        if family is not None:
            row["family"] = family
        rows.append(row)
    return rows


def write_names(path: Path, n: int, seed: int = 0) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in names(n, seed)), encoding="utf-8")
    return path
