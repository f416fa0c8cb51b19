"""The anomaly detectors: one pure, incremental implementation for the offline command and serve.

:class:`Detector` is fed events in time order and returns the findings each event completes.
It keeps only per-subject (and per-source) summaries: sliding windows of recent event times for
the bursts, an exponentially weighted call rate per subject, the set of servers/targets and
source addresses each subject used, and an hour-of-day histogram. Nothing here does I/O or reads
a clock, so the same trail always gives the same findings.

Kinds (``docs/audit.md``):

* ``auth-failures`` - refused credentials from one source address, or against one subject;
* ``denial-burst`` - many denied calls by one subject;
* ``rate-spike`` - a subject's call rate far above its own baseline;
* ``new-target`` - first use of a server or tool by a subject with history;
* ``off-hours`` - a call at an hour the subject (with history) is almost never active;
* ``new-source`` - a new source address, or country, for a subject with history.

Bursts fire once per key and then stay quiet for one window, so a long attack gives one finding
per window rather than one per event.

A "subject" here is a person: the subject name together with who vouches for it (the event's
``vouched_by``, :func:`~mcp_guard.ratelimit.vouched_by`). Another tenant's key or another
issuer's token of the same name is someone else, with baselines and bursts of its own, so a
namesake's misdeeds are never found on, nor held against, the person it is named after.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone, tzinfo
from typing import Any, Literal

from .events import Event

Kind = Literal["auth-failures", "denial-burst", "rate-spike", "new-target", "off-hours", "new-source"]
KINDS: tuple[Kind, ...] = (
    "auth-failures",
    "denial-burst",
    "rate-spike",
    "new-target",
    "off-hours",
    "new-source",
)

#: Event ids a finding lists at most (the newest ones); ``why`` gives the full count.
MAX_IDS = 50
#: Targets, source addresses and countries remembered per subject; past this, a novelty is
#: reported (within :data:`MAX_NOVELTIES`) but not learned, so memory stays bounded.
MAX_KNOWN = 1000
#: Novelty findings (``new-target``, ``new-source``) per subject and kind in one hour; the rest
#: are counted and named in the next finding, so one subject cannot flood the alerts.
MAX_NOVELTIES = 10


@dataclass(frozen=True, slots=True)
class Thresholds:
    """When each detector fires. Validated and documented as the ``[anomalies]`` config section."""

    kinds: frozenset[str] = frozenset(KINDS)
    #: refused credentials within ``auth_window`` seconds, per source address and per subject
    auth_failures: int = 10
    auth_window: float = 60.0
    #: denied calls by one subject within ``denial_window`` seconds
    denials: int = 20
    denial_window: float = 300.0
    #: calls within ``rate_window`` seconds at least ``rate_factor`` times the subject's usual
    #: number per window, and at least ``rate_min``; after ``rate_history`` windows with calls
    rate_window: float = 300.0
    rate_factor: float = 10.0
    rate_min: int = 50
    rate_history: int = 5
    #: events of a subject before its novelties (target, source, hour) count as anomalies
    min_history: int = 50
    #: share of the subject's events in the hour (and the hours either side) below which it is
    #: off-hours; the time zone the hours are counted in
    off_hours_share: float = 0.01
    timezone: tzinfo = timezone.utc


@dataclass(frozen=True, slots=True)
class Finding:
    """One anomaly; :meth:`as_dict` is the JSON contract of ``mcp-guard audit anomalies --json``."""

    kind: str
    subject: str | None
    source_ip: str | None
    server: str | None
    target: str | None
    score: float
    start: float
    end: float
    events: tuple[str, ...]
    why: str
    country: str | None = field(default=None, compare=False)
    #: Who vouches for ``subject`` (an issuer, ``api-keys/TENANT``), None when nobody but the
    #: name itself: ``subject`` and this together name the person the finding is about.
    vouched_by: str | None = None

    @property
    def who(self) -> str:
        """The subject as people read it: ``ada``, or ``ada (api-keys/acme)`` for a namesake."""
        return named(self.subject, self.vouched_by) if self.subject is not None else "-"

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "vouched_by": self.vouched_by,
            "source_ip": self.source_ip,
            "server": self.server,
            "target": self.target,
            "score": round(self.score, 2),
            "window": [iso(self.start), iso(self.end)],
            "events": list(self.events),
            "why": self.why,
        }


def named(subject: str, vouched_by: str | None) -> str:
    """A subject with who vouches for it, when someone does, for findings' text."""
    return subject if vouched_by is None else f"{subject} ({vouched_by})"


def iso(t: float) -> str:
    """UTC ISO 8601 with milliseconds, as findings show times."""
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Burst:
    """Sliding windows of (time, id) per key; fires at ``limit`` and then rests for one window."""

    __slots__ = ("limit", "quiet", "recent", "window")

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self.recent: dict[Hashable, deque[tuple[float, str]]] = {}
        self.quiet: dict[Hashable, float] = {}

    def add(self, key: Hashable, t: float, event_id: str) -> list[tuple[float, str]] | None:
        """The burst this event completes, or None."""
        q = self.recent.get(key)
        if q is None:
            q = self.recent[key] = deque()
        q.append((t, event_id))
        edge = t - self.window
        while q and q[0][0] <= edge:
            q.popleft()
        if len(q) < self.limit or self.quiet.get(key, -1.0) > t:
            return None
        self.quiet[key] = t + self.window
        burst = list(q)
        q.clear()
        return burst

    def prune(self, now: float) -> None:
        """Drop keys with nothing left in their window (bounded memory in a long-running serve)."""
        edge = now - self.window
        for key in [k for k, q in self.recent.items() if not q or q[-1][0] <= edge]:
            del self.recent[key]
        for key in [k for k, until in self.quiet.items() if until <= now]:
            del self.quiet[key]


class _Subject:
    """What is known of one subject's habits."""

    __slots__ = (
        "bucket",
        "bucket_count",
        "count",
        "countries",
        "hours",
        "novel",
        "off_quiet",
        "rate",
        "rate_n",
        "recent",
        "sources",
        "spike_quiet",
        "targets",
    )

    def __init__(self) -> None:
        self.count = 0
        self.targets: set[tuple[str, str | None]] = set()
        self.sources: set[str] = set()
        self.countries: set[str] = set()
        self.hours = [0] * 24
        self.recent: deque[tuple[float, str]] = deque()
        self.bucket = -1
        self.bucket_count = 0
        self.rate = 0.0  # calls per window, exponentially weighted over the windows with calls
        self.rate_n = 0
        self.spike_quiet = -1.0
        self.off_quiet = -1.0
        #: per novelty kind: [start of its hour, reported in it, held back]
        self.novel: dict[str, list[float]] = {}


class Detector:
    """Feed events oldest first with :meth:`feed`; each call returns the findings that event completes.

    ``report=False`` (for history before ``--since``, or the trail read when serve starts)
    learns baselines without reporting.
    """

    def __init__(self, thresholds: Thresholds | None = None) -> None:
        self.t = th = thresholds or Thresholds()
        self._auth_by_source = _Burst(th.auth_failures, th.auth_window)
        self._auth_by_subject = _Burst(th.auth_failures, th.auth_window)
        self._denials = _Burst(th.denials, th.denial_window)
        #: Keyed by person: (subject, vouched_by).
        self._subjects: dict[tuple[str, str | None], _Subject] = {}
        self._hour_cache: dict[int, int] = {}
        self._utc = th.timezone is timezone.utc
        self._on = th.kinds
        self.seen = 0

    def run(self, events: Iterable[Event], since: float | None = None) -> list[Finding]:
        """All findings of a trail; events before ``since`` only teach the baselines."""
        out: list[Finding] = []
        for event in events:
            found = self.feed(event, since is None or event.time >= since)
            if found:
                out.extend(found)
        return out

    def feed(self, e: Event, report: bool = True) -> list[Finding]:
        self.seen += 1
        found: list[Finding] = []
        if e.kind == "authn":
            if e.decision != "allow" and "auth-failures" in self._on:
                self._auth(e, found)
            return found if report else []
        subject = e.subject
        if e.decision == "deny" and "denial-burst" in self._on:
            # An anonymous caller is counted by address, in keys no person's can equal.
            key = (subject, e.vouched_by) if subject is not None else (None, e.source_ip or "-")
            burst = self._denials.add(key, e.time, e.id)
            if burst is not None:
                found.append(
                    self._burst_finding(
                        "denial-burst",
                        e,
                        burst,
                        self.t.denials,
                        f"{len(burst)} denied calls within {self.t.denial_window:g}s"
                        f" (threshold {self.t.denials}); last: {e.reason or '-'}",
                    )
                )
        if subject is not None:
            person = (subject, e.vouched_by)
            s = self._subjects.get(person)
            if s is None:
                s = self._subjects[person] = _Subject()
            self._habits(e, s, found)
        return found if report else []

    # -- refused credentials ---------------------------------------------------------------------

    def _auth(self, e: Event, found: list[Finding]) -> None:
        th = self.t
        subject = e.subject
        for burst_set, key, what, name in (
            (self._auth_by_source, e.source_ip, "from source", e.source_ip),
            (
                self._auth_by_subject,
                None if subject is None else (subject, e.vouched_by),
                "against subject",
                None if subject is None else named(subject, e.vouched_by),
            ),
        ):
            if key is None:
                continue
            burst = burst_set.add(key, e.time, e.id)
            if burst is not None:
                found.append(
                    self._burst_finding(
                        "auth-failures",
                        e,
                        burst,
                        th.auth_failures,
                        f"{len(burst)} refused credentials {what} {name} within {th.auth_window:g}s"
                        f" (threshold {th.auth_failures}); last: {e.reason or '-'}",
                        subject=e.subject if what == "against subject" else None,
                    )
                )

    def _burst_finding(
        self,
        kind: str,
        e: Event,
        burst: Sequence[tuple[float, str]],
        limit: int,
        why: str,
        subject: str | None = None,
    ) -> Finding:
        # How many times faster than the threshold's rate the burst came (at least 1).
        window = self.t.auth_window if kind == "auth-failures" else self.t.denial_window
        span = max(burst[-1][0] - burst[0][0], 1.0)
        subject = subject if kind == "auth-failures" else e.subject
        return Finding(
            kind=kind,
            subject=subject,
            source_ip=e.source_ip,
            server=e.server,
            target=e.target,
            score=max(1.0, len(burst) / limit * window / span),
            start=burst[0][0],
            end=burst[-1][0],
            events=tuple(i for _, i in burst[-MAX_IDS:]),
            why=why,
            vouched_by=e.vouched_by if subject is not None else None,
        )

    # -- a subject's habits ----------------------------------------------------------------------

    def _habits(self, e: Event, s: _Subject, found: list[Finding]) -> None:
        th = self.t
        on = self._on
        known = s.count >= th.min_history
        t = e.time
        if "rate-spike" in on:
            self._rate(e, s, found)
        if e.server is not None:
            # (server, None) marks the server as used: listing a server whose tools the subject
            # already calls is no novelty; the first call of a tool there is.
            key = (e.server, e.target)
            if key not in s.targets:
                if len(s.targets) < MAX_KNOWN:
                    s.targets.add(key)
                    s.targets.add((e.server, None))
                if known and "new-target" in on:
                    name = f"{e.server}/{e.target}" if e.target else e.server
                    why = f"first use of {name} after {s.count} events"
                    self._novelty(s, "new-target", e, 1.0, why, found)
        if e.source_ip is not None and e.source_ip not in s.sources:
            others = len(s.sources)
            if others < MAX_KNOWN:
                s.sources.add(e.source_ip)
            if known and "new-source" in on:
                self._novelty(
                    s,
                    "new-source",
                    e,
                    1.0,
                    f"first event from {e.source_ip} after {s.count} events from {others} other address(es)",
                    found,
                )
        if e.country is not None and e.country not in s.countries:
            seen_before = bool(s.countries)
            if len(s.countries) < MAX_KNOWN:
                s.countries.add(e.country)
            if known and seen_before and "new-source" in on:
                why = f"first event from country {e.country} after {s.count} events"
                self._novelty(s, "new-source", e, 2.0, why, found)
        hour = self._hour(t)
        if known and "off-hours" in on and s.off_quiet <= t:
            hours = s.hours
            near = hours[hour] + hours[hour - 1] + hours[(hour + 1) % 24]
            share = near / s.count
            if share < th.off_hours_share:
                s.off_quiet = t + 3600.0  # one finding per off-hours hour, not one per call
                found.append(
                    self._single(
                        "off-hours",
                        e,
                        1.0 - share / th.off_hours_share,
                        f"event at {hour:02d}h, when {share:.1%} of this subject's"
                        f" {s.count} events fell (hours {(hour - 1) % 24:02d}-"
                        f"{(hour + 1) % 24:02d})",
                    )
                )
        s.hours[hour] += 1
        s.count += 1

    def _rate(self, e: Event, s: _Subject, found: list[Finding]) -> None:
        th = self.t
        t = e.time
        bucket = int(t // th.rate_window)
        if bucket != s.bucket:
            if s.bucket >= 0:
                # The baseline learns from whole windows only; a spike moves it slowly (weight 1/8).
                s.rate = s.bucket_count if s.rate_n == 0 else s.rate + (s.bucket_count - s.rate) / 8
                s.rate_n += 1
            s.bucket, s.bucket_count = bucket, 0
        s.bucket_count += 1
        q = s.recent
        q.append((t, e.id))
        edge = t - th.rate_window
        while q and q[0][0] <= edge:
            q.popleft()
        if s.rate_n < th.rate_history or s.spike_quiet > t:
            return
        n = len(q)
        if n >= th.rate_min and n >= th.rate_factor * s.rate:
            s.spike_quiet = t + th.rate_window
            found.append(
                Finding(
                    kind="rate-spike",
                    subject=e.subject,
                    source_ip=e.source_ip,
                    server=e.server,
                    target=e.target,
                    score=n / max(s.rate, 1.0),
                    start=q[0][0],
                    end=t,
                    events=tuple(i for _, i in list(q)[-MAX_IDS:]),
                    why=f"{n} calls within {th.rate_window:g}s, usually {s.rate:.1f}"
                    f" (factor {th.rate_factor:g}, minimum {th.rate_min})",
                    vouched_by=e.vouched_by,
                )
            )

    def _novelty(
        self, s: _Subject, kind: str, e: Event, score: float, why: str, found: list[Finding]
    ) -> None:
        """Report a novelty unless the subject had :data:`MAX_NOVELTIES` of them this hour; the
        ones held back are counted and named in the next one reported."""
        hour = s.novel.get(kind)
        if hour is None or not hour[0] <= e.time < hour[0] + 3600.0:
            hour = s.novel[kind] = [e.time, 0.0, hour[2] if hour else 0.0]
        if hour[1] >= MAX_NOVELTIES:
            hour[2] += 1
            return
        hour[1] += 1
        if hour[2]:
            why += f" ({hour[2]:.0f} more {kind} by this subject not reported)"
            hour[2] = 0
        found.append(self._single(kind, e, score, why))

    @staticmethod
    def _single(kind: str, e: Event, score: float, why: str) -> Finding:
        return Finding(
            kind=kind,
            subject=e.subject,
            source_ip=e.source_ip,
            server=e.server,
            target=e.target,
            score=score,
            start=e.time,
            end=e.time,
            events=(e.id,),
            why=why,
            country=e.country,
            vouched_by=e.vouched_by,
        )

    def _hour(self, t: float) -> int:
        whole = int(t // 3600)
        if self._utc:
            return whole % 24
        hour = self._hour_cache.get(whole)
        if hour is None:
            if len(self._hour_cache) > 100_000:
                self._hour_cache.clear()
            hour = self._hour_cache[whole] = datetime.fromtimestamp(whole * 3600, self.t.timezone).hour
        return hour

    def prune(self, now: float) -> None:
        """Forget burst windows that have ended (the live monitor calls this now and then)."""
        for burst in (self._auth_by_source, self._auth_by_subject, self._denials):
            burst.prune(now)
