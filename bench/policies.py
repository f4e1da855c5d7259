"""Policies in the shape of Casbin's published RBAC benchmark, and requests against them.

Casbin's `BenchmarkRBACModelSmall/Medium/Large`: R roles (`group-has-a-very-long-name-i`)
each allowed to read one resource (`data-has-a-very-long-name-{i // 10}`), and 10 R users
(`user-has-a-very-long-name-j`) each in role `j // 10`: 1,100 / 11,000 / 110,000 rules.
The model is Casbin's `rbac_model.conf`, which oms-auth serves on its indexed path.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

MODEL = """[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act
"""

USER = "user-has-a-very-long-name-{}"
ROLE = "group-has-a-very-long-name-{}"
DATA = "data-has-a-very-long-name-{}"


@dataclass(frozen=True)
class Size:
    name: str
    roles: int

    @property
    def users(self) -> int:
        return self.roles * 10

    @property
    def resources(self) -> int:
        return max(1, self.roles // 10)

    @property
    def rules(self) -> int:
        return self.roles + self.users


SIZES = (Size("small", 100), Size("medium", 1_000), Size("large", 10_000))


def write_policy(folder: Path, size: Size) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.conf").write_text(MODEL)
    lines = [f"p, {ROLE.format(i)}, {DATA.format(i // 10)}, read" for i in range(size.roles)]
    lines += [f"g, {USER.format(j)}, {ROLE.format(j // 10)}" for j in range(size.users)]
    (folder / "policy.csv").write_text("\n".join(lines) + "\n")
    return folder


def requests(size: Size, count: int, *, seed: int = 7) -> list[tuple[str, str, str]]:
    """Half allowed (the user's own role's resource), half a random resource (mostly denied);
    the first one is Casbin's own benchmark request (a deny: every rule is scanned)."""
    rng = random.Random(seed)
    out = [(USER.format(size.users // 2 + 1), DATA.format(size.resources * 3 // 2), "read")]
    while len(out) < count:
        user = rng.randrange(size.users)
        own = rng.random() < 0.5
        resource = (user // 10) // 10 if own else rng.randrange(size.resources)
        out.append((USER.format(user), DATA.format(resource), "read"))
    return out
