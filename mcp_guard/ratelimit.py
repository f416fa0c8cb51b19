"""Admission by the ``[[limits]]`` of the policy, counted in the shared state store.

The policy decides which limits apply to a request
(``CompiledPolicy.limits_for``); this module only counts. Each limit keys
its counter by its id and the values of its ``per`` dimensions, so with a
shared store (Redis, or one SQLite file) the limit holds fleet-wide: N calls
per window in total, never N per replica.

Several limits are counted all or nothing when the store offers
``hit_many`` (every built-in store does): a call refused by one limit spends
no budget of the others. With a store that only has ``hit``, limits are
counted one by one and a call refused by a later limit has already spent a
unit of the earlier ones - stricter, never looser.

Fail closed: a store error, a malformed limit or an unknown dimension raises
:class:`~mcp_guard.errors.GuardUnavailable`; the guard refuses the call.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence

from .errors import GuardError, GuardUnavailable, RateLimited
from .model import AccessRequest, LimitSpec, Principal
from .protocols import RateDecision, StateStore

#: Dimensions a limit can be keyed by, and how each is read from a call.
DIMENSIONS: dict[str, Callable[[Principal, AccessRequest], str | None]] = {
    "subject": lambda p, r: p.subject,
    "tenant": lambda p, r: p.tenant or None,  # an empty claim names no tenant either
    "server": lambda p, r: r.server,
    "target": lambda p, r: f"{r.kind}/{r.target}" if r.target is not None else None,
}

#: Values kept readable in keys; anything else (separators, long or odd text) is hashed.
_PLAIN = re.compile(r"[A-Za-z0-9_.@/+=-]{1,64}")

#: Stands for a missing value (a principal without tenant, a request without target):
#: such calls share one counter per limit rather than escaping it.
_MISSING = "~"

_CACHE_MAX = 4096


def key_part(value: str | None) -> str:
    """Encode one value for a counter key, injectively and without ``:`` separators.

    Plain values stay readable; others become ``#`` plus a SHA-256 prefix, a
    form no plain value can take.
    """
    if value is None:
        return _MISSING
    if _PLAIN.fullmatch(value):
        return value
    return "#" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def vouched_by(principal: Principal) -> str | None:
    """Who vouches for the principal's subject name: its issuer, or the key book of its tenant.

    An identity provider names its own users. A stored API key names whatever subject the admin
    who created it typed, and an admin bound to one tenant may create keys only for that tenant:
    such a key's ``gary`` is that tenant's ``gary``, not another tenant's person of the same name.
    A key without a tenant is vouched for by the key book alone (only an admin of no tenant
    creates those).
    """
    return voucher(principal.issuer, principal.tenant, principal.auth_method)


def voucher(issuer: str | None, tenant: str | None, auth_method: str | None) -> str | None:
    """:func:`vouched_by` from the bare fields, as an audit record's principal summary keeps them."""
    if issuer is not None:
        return issuer
    if auth_method == "api_key" and tenant:
        return "api-keys/" + tenant
    return None


def subject_key(principal: Principal) -> str:
    """The caller as one person, for state kept per subject (budgets, flow marks).

    A subject name is only unique within whoever vouches for it (:func:`vouched_by`: the
    identity provider that issued it, ``sub`` in OIDC, or a tenant's keys), so two issuers'
    ``alice`` are two people. The tenant is otherwise left out on purpose: a person who may pick
    a tenant per token must not get fresh counters or a clean flow history with each. ``key_part``
    never yields ``:``, so the qualified form cannot collide with an unqualified one.
    """
    return person_key(principal.subject, vouched_by(principal))


def person_key(subject: str, by: str | None) -> str:
    """:func:`subject_key` of the subject ``subject`` that ``by`` vouches for (None: nobody)."""
    if by is None:
        return key_part(subject)
    return f"{key_part(subject)}:{key_part(by)}"


class _Prepared:
    """A limit compiled once: key prefix, dimension readers, checked numbers."""

    __slots__ = ("dims", "limit", "prefix", "spec", "window")

    def __init__(self, spec: LimitSpec, namespace: str) -> None:
        if not isinstance(spec.requests, int) or isinstance(spec.requests, bool) or spec.requests < 0:
            raise GuardUnavailable(f"limit {spec.id!r}: requests must be a non-negative integer")
        if not (isinstance(spec.window, (int, float)) and 0 < spec.window < float("inf")):
            raise GuardUnavailable(f"limit {spec.id!r}: window must be a positive number of seconds")
        unknown = [d for d in spec.per if d not in DIMENSIONS]
        if unknown:
            raise GuardUnavailable(f"limit {spec.id!r}: unknown dimension(s) {', '.join(unknown)}")
        self.spec = spec
        self.limit = spec.requests
        self.window = float(spec.window)
        self.dims = tuple((name, DIMENSIONS[name]) for name in spec.per)
        self.prefix = f"{namespace}{key_part(spec.id)}"

    def key(self, principal: Principal, request: AccessRequest) -> str:
        parts = [self.prefix]
        for name, read in self.dims:
            parts.append(f"{name}={key_part(read(principal, request))}")
        return ":".join(parts)


class RateLimiter:
    """Counts calls against policy limits in a :class:`~mcp_guard.protocols.StateStore`.

    Safe to share across sessions and tasks; limits are compiled on first
    sight and cached by value.
    """

    def __init__(self, store: StateStore, *, namespace: str = "rl:") -> None:
        self.store = store
        self._namespace = namespace
        self._prepared: dict[LimitSpec, _Prepared] = {}
        hit_many = getattr(store, "hit_many", None)
        self._hit_many = hit_many if callable(hit_many) else None

    def _prepare(self, spec: LimitSpec) -> _Prepared:
        prepared = self._prepared.get(spec)
        if prepared is None:
            prepared = _Prepared(spec, self._namespace)
            if len(self._prepared) >= _CACHE_MAX:
                self._prepared.clear()
            self._prepared[spec] = prepared
        return prepared

    def keys_for(
        self, principal: Principal, request: AccessRequest, limits: Sequence[LimitSpec]
    ) -> list[str]:
        """The counter keys a call would hit (for tests, audit and operators)."""
        return [self._prepare(spec).key(principal, request) for spec in limits]

    async def check(self, principal: Principal, request: AccessRequest, limits: Sequence[LimitSpec]) -> None:
        """Count this call against every limit; raise ``RateLimited`` if any is exhausted."""
        if not limits:
            return
        try:
            prepared = [self._prepare(spec) for spec in limits]
            hits = [(p.key(principal, request), p.limit, p.window) for p in prepared]
            decisions = await self._count(hits)
        except GuardError:
            raise
        except Exception as exc:
            raise GuardUnavailable(f"rate limiting failed: {type(exc).__name__}: {exc}") from exc
        if len(decisions) != len(hits):
            raise GuardUnavailable("rate limiting failed: store returned a wrong number of decisions")
        denied = [(p, d) for p, d in zip(prepared, decisions) if not d.allowed]  # noqa: B905
        if denied:
            retry = max(d.retry_after for _, d in denied)
            detail = "; ".join(
                f"limit {p.spec.id!r} exhausted: {d.count}/{p.limit} per {p.window:g}s "
                f"({', '.join(f'{n}={read(principal, request)}' for n, read in p.dims) or 'global'})"
                for p, d in denied
            )
            raise RateLimited(detail, retry_after=retry)

    async def _count(self, hits: list[tuple[str, int, float]]) -> Sequence[RateDecision]:
        if self._hit_many is not None and len(hits) > 1:
            result: Sequence[RateDecision] = await self._hit_many(hits)
            return result
        out: list[RateDecision] = []
        for key, limit, window in hits:
            decision = await self.store.hit(key, limit, window)
            out.append(decision)
            if not decision.allowed:
                break
        return out if len(out) == len(hits) else out + [RateDecision(True, 0, 0)] * (len(hits) - len(out))
