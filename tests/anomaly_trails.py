"""Generated audit trails with known, injected anomalies, for the detector tests and benchmark.

A seeded organisation of users, each with working hours, a usual rate, a few tools on a few
servers and one or two source addresses, works for ``days`` days; after that, ``inject`` puts
in anomalies of every kind, each labelled with what a detector should report. The normal part
alone (``inject=False``) must give no finding at all.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

#: 2026-11-02 00:00 UTC, a Monday.
START = 1793577600.0
SERVERS = {
    "notes": ["search", "read", "write", "list_notes"],
    "files": ["read_file", "list_dir", "stat"],
    "crm": ["lookup", "update_contact", "export"],
    "tickets": ["open", "comment", "close"],
}


@dataclass(frozen=True)
class Label:
    """An injected anomaly: a finding of ``kind`` naming ``subject`` (or ``source_ip``) in start..end."""

    kind: str
    subject: str | None
    source_ip: str | None
    start: float
    end: float


@dataclass
class Trail:
    records: list[dict[str, Any]] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)


@dataclass
class _User:
    name: str
    first_hour: int
    hours: int
    rate: float  # calls per working hour
    tools: list[tuple[str, str]]
    ips: list[str]
    country: str


class _Builder:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.trail = Trail()
        self.n = 0

    def add(
        self,
        t: float,
        user: _User | None,
        *,
        ip: str | None = None,
        server: str | None = None,
        target: str | None = None,
        decision: str = "allow",
        event: str = "request",
        method: str = "tools/call",
        reason: str | None = None,
        country: str | None = None,
    ) -> str:
        self.n += 1
        event_id = f"ev{self.n:08d}"
        principal = None
        if user is not None:
            principal = {
                "subject": user.name,
                "tenant": "acme",
                "roles": ["staff"],
                "country": country or user.country,
            }
        self.trail.records.append(
            {
                "id": event_id,
                "time": t,
                "event": event,
                "principal": principal,
                "source_ip": ip if ip is not None else (user.ips[0] if user else None),
                "method": method,
                "server": server,
                "kind": "tool" if target else None,
                "target": target,
                "decision": decision,
                "reasons": [reason] if reason else [],
            }
        )
        return event_id

    def call(self, t: float, u: _User, **kw: Any) -> str:
        server, tool = self.rng.choice(u.tools)
        kw.setdefault("ip", self.rng.choice(u.ips))
        return self.add(t, u, server=server, target=tool, **kw)


def _users(rng: random.Random, count: int) -> list[_User]:
    users = []
    for i in range(count):
        servers = rng.sample(sorted(SERVERS), rng.randint(1, 3))
        tools = [(s, t) for s in servers for t in rng.sample(SERVERS[s], rng.randint(1, len(SERVERS[s])))]
        ips = [
            f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            for _ in range(rng.randint(1, 2))
        ]
        users.append(
            _User(
                name=f"user{i:03d}",
                first_hour=rng.randint(6, 10),
                hours=rng.randint(7, 9),
                rate=rng.uniform(6, 40),
                tools=tools,
                ips=ips,
                country=rng.choice(["DE", "FR", "US"]),
            )
        )
    return users


def _normal(b: _Builder, users: list[_User], days: int) -> None:
    rng = b.rng
    for u in users:
        # First working hour: every tool, every address and a list, so the habits are known.
        t0 = START + u.first_hour * 3600
        for j, (server, tool) in enumerate(u.tools):
            b.add(t0 + j * 7, u, server=server, target=tool, ip=u.ips[j % len(u.ips)])
        for j, ip in enumerate(u.ips):
            b.add(t0 + 300 + j, u, server=u.tools[0][0], method="tools/list", ip=ip)
    for day in range(days):
        if day % 7 >= 5:
            continue  # weekends off
        for u in users:
            begin = START + day * 86400 + u.first_hour * 3600
            end = begin + u.hours * 3600
            t = begin + 600
            while True:
                t += rng.expovariate(u.rate / 3600)
                if t >= end:
                    break
                roll = rng.random()
                if roll < 0.02:
                    b.call(t, u, decision="deny", reason="no rule allows this call")
                elif roll < 0.03:
                    b.add(
                        t,
                        None,
                        ip=rng.choice(u.ips),
                        event="authn",
                        method="http/authenticate",
                        decision="deny",
                        reason="API key expired",
                    )
                elif roll < 0.05:
                    b.add(t, u, server=rng.choice(u.tools)[0], method="tools/list", ip=rng.choice(u.ips))
                else:
                    b.call(t, u)


def generate(seed: int, *, users: int = 20, days: int = 14, inject: bool = True) -> Trail:
    """A trail of ``days`` days of normal work; with ``inject``, two more days holding anomalies."""
    rng = random.Random(seed)
    b = _Builder(rng)
    people = _users(rng, users)
    _normal(b, people, days)
    if inject:
        _inject(b, people, days)
    b.trail.records.sort(key=lambda r: r["time"])
    return b.trail


def _inject(b: _Builder, users: list[_User], days: int) -> None:
    rng = b.rng
    day = days + (7 - days % 7) % 7  # the next Monday
    victims = rng.sample(users, 12)

    def at(u: _User, hour_offset: float) -> float:
        return START + day * 86400 + (u.first_hour + hour_offset) * 3600

    def label(kind: str, subject: str | None, ip: str | None, start: float, end: float) -> None:
        b.trail.labels.append(Label(kind, subject, ip, start, end))

    # auth-failures: a guessing burst from an unknown address, twice.
    for k in range(2):
        t = START + day * 86400 + (11 + k) * 3600
        ip = f"198.51.100.{10 + k}"
        for j in range(25):
            b.add(
                t + j * 1.5,
                None,
                ip=ip,
                event="authn",
                method="http/authenticate",
                decision="deny",
                reason="unknown API key 0123456789ab",
            )
        label("auth-failures", None, ip, t, t + 40)
    # denial-burst: 40 refused calls in four minutes.
    for u in victims[0:2]:
        t = at(u, 2)
        for j in range(40):
            b.call(t + j * 6, u, decision="deny", reason="no rule allows this call")
        label("denial-burst", u.name, None, t, t + 240)
    # rate-spike: 400 calls in five minutes, the usual tools from the usual address.
    for u in victims[2:4]:
        t = at(u, 3)
        for j in range(400):
            b.call(t + j * 0.7, u, ip=u.ips[0])
        label("rate-spike", u.name, None, t, t + 280)
    # new-target: a tool nobody of them ever used.
    for u in victims[4:6]:
        t = at(u, 1.5)
        b.add(t, u, server="admin", target="drop_database", ip=u.ips[0])
        label("new-target", u.name, None, t, t)
    # off-hours: a few calls at 03:00 in the middle of the night (every user works 06-19h).
    for u in victims[6:8]:
        t = START + day * 86400 + 3 * 3600 + rng.uniform(0, 1200)
        for j in range(3):
            b.call(t + j * 40, u, ip=u.ips[0])
        label("off-hours", u.name, None, t, t + 80)
    # new-source: calls from an address the subject never used, and from another country.
    for u in victims[8:10]:
        t = at(u, 4)
        ip = f"203.0.113.{rng.randint(1, 254)}"
        for j in range(3):
            b.call(t + j * 30, u, ip=ip)
        label("new-source", u.name, ip, t, t + 60)
    for u in victims[10:12]:
        t = at(u, 4.5)
        other = "BR" if u.country != "BR" else "JP"
        b.call(t, u, ip=u.ips[0], country=other)
        label("new-source", u.name, None, t, t)


def score(findings: list[Any], labels: list[Label]) -> dict[str, dict[str, float]]:
    """Precision and recall per kind: a finding is right when a label of its kind names its subject
    (or source address) and their times overlap."""

    def hits(f: Any, lab: Label) -> bool:
        who = (lab.subject is not None and f.subject == lab.subject) or (
            lab.subject is None and f.source_ip == lab.source_ip
        )
        return f.kind == lab.kind and who and f.start <= lab.end + 1 and f.end >= lab.start - 1

    out: dict[str, dict[str, float]] = {}
    kinds = sorted({lab.kind for lab in labels} | {f.kind for f in findings})
    for kind in kinds:
        fs = [f for f in findings if f.kind == kind]
        ls = [lab for lab in labels if lab.kind == kind]
        right = sum(1 for f in fs if any(hits(f, lab) for lab in ls))
        found = sum(1 for lab in ls if any(hits(f, lab) for f in fs))
        out[kind] = {
            "findings": len(fs),
            "labels": len(ls),
            "precision": right / len(fs) if fs else 1.0,
            "recall": found / len(ls) if ls else 1.0,
        }
    return out
