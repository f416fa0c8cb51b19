"""The inspect stages of the guard: what servers list and return, screened before the model sees it.

Lists are filtered per principal (policy visibility), checked against pinned
definitions (rug-pull defence) and scanned by the sanitizers; results are
size-checked and scanned. :class:`~mcp_guard.guard.Guard` inherits these steps;
the pipeline decides when they run.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from contextvars import ContextVar
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal

from .classify import MethodInfo, item_name
from .errors import AccessDenied, GuardUnavailable
from .limits import SizeLimits, check_size
from .model import Finding, Principal, ResultSummary, ScanResult
from .protocols import PolicyEngine, Sanitizer
from .sanitize.policy import verdict_action
from .withheld import WithheldItems

if TYPE_CHECKING:
    from .sanitize.pins import PinStore
    from .sanitize.policy import SanitizeConfig, SanitizePolicy

logger = logging.getLogger("mcp_guard")

Direction = Literal["inbound", "outbound"]

#: The longest name the visibility cache keeps (callers choose names; longer ones are decided uncached).
VISIBILITY_NAME_MAX = 256
#: Names kept per principal shape (oldest first out), and in all principals' dicts together.
VISIBILITY_NAMES = 4096
VISIBILITY_TOTAL = 32768
#: A principal whose subject, tenant, roles and groups weigh more (64 per role or group) is never cached.
_PRINCIPAL_MAX = 4096
#: Pin notices raised while serving the current request; the server middleware passes them on
#: to the caller's log (``notifications/message``), so the user sees them, not only the operator.
PIN_NOTICES: ContextVar[list[str] | None] = ContextVar("mcp_guard_pin_notices", default=None)
#: Hidden items named one by one in a list's audit reason; the rest are counted.
_HIDDEN_NAMED = 20


class Screening:
    """List filtering, pin checks, sanitizer scans and result inspection (a part of :class:`Guard`)."""

    policy: PolicyEngine
    sanitizers: tuple[Sanitizer, ...]
    mode: Literal["enforce", "shadow"]
    size_limits: SizeLimits
    inspect_lists: bool
    inspect_results: bool
    sanitize: SanitizeConfig
    pins: PinStore | None
    server: str | None
    withheld: WithheldItems
    #: The ``guard.toml`` this guard was built from, for the commands its notices print.
    config_source: str | None = None
    _visibility: OrderedDict[tuple[Any, ...], dict[str, bool]]
    _visibility_cache_size: int
    _visibility_names: int = 0  # names held in all the dicts of ``_visibility``
    _scan_cache: OrderedDict[tuple[str, str], ScanResult]

    # ------------------------------------------------------------------ inspect-out
    def visible(self, principal: Principal, server: str, kind: str, name: str) -> bool:
        """Whether ``principal`` may see an item; memoised per principal shape and policy version.

        Bounded whatever callers send: at most ``_visibility_cache_size``
        principal shapes (the one that least recently added a name out), :data:`VISIBILITY_NAMES`
        names each and :data:`VISIBILITY_TOTAL` in all (oldest first out); a
        name longer than :data:`VISIBILITY_NAME_MAX`, or a principal with huge
        claims, is decided uncached.
        """
        key = (
            getattr(self.policy, "version", None),
            server,
            kind,
            principal.subject,
            principal.roles,
            principal.groups,
            principal.tenant,
        )
        cache = self._visibility
        names = cache.get(key)
        if names is not None:
            seen = names.get(name)
            if seen is not None:
                return seen
        seen = bool(self.policy.visible(principal, server, kind, name))
        if len(name) > VISIBILITY_NAME_MAX or len(server) > VISIBILITY_NAME_MAX:
            return seen
        if names is None:
            if _principal_size(principal) > _PRINCIPAL_MAX:
                return seen
            names = cache[key] = {}
            if len(cache) == 1:
                self._visibility_names = 0  # recount from scratch whenever the cache is empty
            while len(cache) > max(self._visibility_cache_size, 1):
                self._drop_oldest_principal()
        else:
            cache.move_to_end(key)
        if len(names) >= VISIBILITY_NAMES:
            del names[next(iter(names))]
        else:
            self._visibility_names += 1
        names[name] = seen
        while self._visibility_names > VISIBILITY_TOTAL and len(cache) > 1:
            self._drop_oldest_principal()
        return seen

    def _drop_oldest_principal(self) -> None:
        _, dropped = self._visibility.popitem(last=False)
        self._visibility_names = max(0, self._visibility_names - len(dropped))

    def sanitize_policy(self, server: str) -> SanitizePolicy:
        """The verdict actions for ``server``; global shadow mode makes every one report-only."""
        policy = self.sanitize.for_server(server)
        if self.mode == "shadow" and not policy.shadow:
            policy = policy.model_copy(update={"shadow": True})
        return policy

    def filter_list(
        self,
        principal: Principal | None,
        server: str,
        info: MethodInfo,
        result: Mapping[str, Any],
        *,
        inspect_items: bool | None = None,
    ) -> tuple[dict[str, Any], ResultSummary]:
        """Drop the items ``principal`` may not use and apply the server's sanitizer actions.

        Findings of every kept or withheld item end up in the summary, so a
        flagged item never reaches a client without an audit event. Without a
        principal only the sanitizer verdicts apply (screening a server's list).
        """
        out, summary, _ = self._filter(principal, server, info, result, inspect_items)
        return out, summary

    def _filter(
        self,
        principal: Principal | None,
        server: str,
        info: MethodInfo,
        result: Mapping[str, Any],
        inspect_items: bool | None,
    ) -> tuple[dict[str, Any], ResultSummary, list[str]]:
        key, kind = info.list_key, info.list_kind
        assert key is not None and kind is not None
        items = result.get(key)
        if not isinstance(items, list):
            raise GuardUnavailable(f"malformed {key} list result")
        scan = self.inspect_lists if inspect_items is None else inspect_items
        policy = self.sanitize_policy(server) if scan and self.sanitizers else None
        # Look-alike names are judged against the whole list the server sent, hidden items included.
        list_level = self.list_findings(kind, items) if policy is not None else {}
        kept: list[Any] = []
        findings: list[Finding] = []
        withheld: list[str] = []
        hidden: list[str] = []
        for index, item in enumerate(items):
            if not isinstance(item, Mapping):
                continue
            name = item_name(kind, item)
            if name is None:
                continue
            if principal is not None and not self.visible(principal, server, kind, name):
                hidden.append(name)
                continue
            if policy is not None:
                scanned = self.scan_item(kind, item)
                extra = list_level.get(index)
                if extra:
                    scanned = ScanResult((*scanned.findings, *extra), scanned.item)
                # Each finding names its item: a list's record must say which definition it is about.
                findings.extend(replace(f, message=f"{kind} {name!r}: {f.message}") for f in scanned.findings)
                action = verdict_action(policy, scanned)
                if action == "withhold":
                    withheld.append(name)
                    continue
                if action == "rewrite":
                    item = scanned.item
            kept.append(item)
        out = dict(result)
        out[key] = kept
        summary = ResultSummary(
            items=len(kept),
            withheld=len(items) - len(kept) - len(hidden),
            findings=tuple(findings),
            hidden=len(hidden),
            hidden_why=self._hidden_why(principal, server, kind, hidden),
        )
        return out, summary, withheld

    def _hidden_why(
        self, principal: Principal | None, server: str, kind: str, names: Sequence[str]
    ) -> tuple[str, ...]:
        """Which rule hides each item from ``principal`` (``default deny`` when no rule lists it).

        A policy engine without ``hiding_rule`` (a plug-in) gives "hidden by policy" alone.
        """
        if principal is None or not names:
            return ()
        explain = getattr(self.policy, "hiding_rule", None)
        out: list[str] = []
        for name in names[:_HIDDEN_NAMED]:
            if not callable(explain):
                out.append(name)
                continue
            try:
                why = str(explain(principal, server, kind, name))
            except Exception:  # an explanation never decides anything: a failure only loses detail
                why = "policy"
                logger.debug("hiding_rule failed", exc_info=True)
            out.append(f"{name}: {why}")
        if len(names) > _HIDDEN_NAMED:
            out.append(f"and {len(names) - _HIDDEN_NAMED} more")
        return tuple(out)

    def screens(self, server: str, direction: Direction) -> bool:
        """Whether lists of ``server`` are screened (sanitizers, pins) in this direction.

        A server this host calls (outbound) is always screened; a guarded
        server's own lists (inbound) when ``inspect_lists`` is on.
        """
        if direction == "inbound" and not self.inspect_lists:
            return False
        return bool(self.sanitizers) or (self.pins is not None and self.sanitize_policy(server).pin)

    async def screen_list(
        self,
        principal: Principal | None,
        server: str,
        info: MethodInfo,
        result: Mapping[str, Any],
        direction: Direction = "inbound",
    ) -> tuple[dict[str, Any], ResultSummary]:
        """The inspect stage of a list: pins, sanitizer verdicts, then what ``principal`` may see.

        What the pins and the sanitizers withheld is remembered in
        :attr:`withheld`, so the same items are refused when called by name.
        """
        key, kind = info.list_key, info.list_kind
        assert key is not None and kind is not None
        if not self.screens(server, direction):
            out, summary, _ = self._filter(principal, server, info, result, False)
            return out, summary
        listed = [n for i in result.get(key) or () if isinstance(i, Mapping) and (n := item_name(kind, i))]
        data, pin_findings = await self.screen_pins(server, kind, result, key)
        served = {n for i in data.get(key) or () if isinstance(i, Mapping) and (n := item_name(kind, i))}
        # Verdicts are about definitions, never about who asks: every item is screened, whoever
        # lists, so a caller who cannot see an item never clears its withheld mark for others.
        out, summary, withheld = self._filter(None, server, info, data, True)
        why = {n: "its definition is not the approved pin (mcp-guard pins diff / approve)" for n in listed}
        for name in withheld:
            label = f"{kind} {name!r}:"
            rules = sorted(
                {f.rule for f in summary.findings if f.message.startswith(label) and f.severity == "high"}
            )
            why[name] = "the sanitizers block its definition (" + (", ".join(rules) or "findings") + ")"
        hidden = [*(n for n in listed if n not in served), *withheld]
        self.withheld.update(server, kind, listed, {n: why[n] for n in hidden})
        if principal is not None:
            out_items = out[key]
            visible = [
                i
                for i in out_items
                if (n := item_name(kind, i)) is not None and self.visible(principal, server, kind, n)
            ]
            shown = {item_name(kind, i) for i in visible}
            out[key] = visible
            hidden = [n for i in out_items if (n := item_name(kind, i)) is not None and n not in shown]
            summary = replace(
                summary,
                items=len(visible),
                withheld=len(listed) - len(out_items),
                hidden=len(hidden),
                hidden_why=self._hidden_why(principal, server, kind, hidden),
            )
        if pin_findings:
            summary = replace(summary, findings=(*pin_findings, *summary.findings))
        return out, summary

    async def screen_pins(
        self,
        server: str,
        kind: str,
        result: Mapping[str, Any],
        key: str,
        *,
        trust_first_use: bool = True,
    ) -> tuple[dict[str, Any], tuple[Finding, ...]]:
        """Withhold list items whose definition differs from the approved pin (rug-pull defence).

        The first list a server ever shows is pinned as approved when
        ``trust_first_use`` (servers listed in the config are approved by
        being listed); afterwards a changed item, and a new one where the
        server's policy says ``approve_new = "require"``, is withheld until
        ``mcp-guard pins approve``. A pin store that fails raises
        :class:`GuardUnavailable`: the list is refused, never served unchecked.
        """
        out = dict(result)
        items = result.get(key)
        policy = self.sanitize_policy(server)
        if self.pins is None or not policy.pin or not isinstance(items, list) or not items:
            return out, ()
        try:
            check = await self.pins.check(
                server, kind, items, approve_new=policy.approve_new, trust_first_use=trust_first_use
            )
        except Exception as exc:
            raise GuardUnavailable(f"pin store failed: {exc!r}") from exc
        notes = tuple(
            Finding("pin.changed", "high", "/", f"{kind} {name!r} changed since approval")
            for name in check.changed
        ) + tuple(
            Finding("pin.unapproved", "high", "/", f"{kind} {name!r} is not approved yet")
            for name in check.pending
        )
        if notes and not policy.shadow:
            notice = self.pin_notice(server, kind, check.changed, check.pending)
            logger.warning("%s", notice)
            sink = PIN_NOTICES.get()
            if sink is not None:
                sink.append(notice)
        out[key] = list(items) if policy.shadow else list(check.allowed)
        return out, notes

    def pin_notice(self, server: str, kind: str, changed: Sequence[str], pending: Sequence[str]) -> str:
        """What an operator must read when pins withhold items: how many, which, and the commands.

        Pins persist in the state store, so a server restarted with other flags (a changed
        description or schema) loses every changed item until someone looks; this says so.
        """
        config = f" --config {self.config_source}" if self.config_source else ""
        names = [*(f"{n!r} (changed)" for n in changed), *(f"{n!r} (new)" for n in pending)]
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        return (
            f"{len(names)} {kind}(s) of server {server!r} withheld: their definitions differ from the "
            f"approved pins ({shown}). Review: mcp-guard pins diff {server}{config}  "
            f"approve: mcp-guard pins approve {server} --all{config}"
        )

    def list_findings(self, kind: str, items: Sequence[Any]) -> dict[int, tuple[Finding, ...]]:
        """Findings about items in relation to each other (``list_findings`` of each sanitizer)."""
        merged: dict[int, tuple[Finding, ...]] = {}
        for sanitizer in self.sanitizers:
            fn = getattr(sanitizer, "list_findings", None)
            if not callable(fn):
                continue
            try:
                found = fn(kind, items)
            except Exception as exc:
                raise GuardUnavailable(f"sanitizer {type(sanitizer).__name__} failed: {exc!r}") from exc
            for index, extra in found.items():
                merged[index] = (*merged.get(index, ()), *extra)
        return merged

    def scan_item(self, kind: str, item: Mapping[str, Any]) -> ScanResult:
        """Run every sanitizer over one item, memoised by content hash."""
        digest = hashlib.sha256(
            json.dumps(item, sort_keys=True, separators=(",", ":"), default=str).encode()
        ).hexdigest()
        cached = self._scan_cache.get((kind, digest))
        if cached is not None:
            return cached
        result = self._scan(kind, item)
        self._scan_cache[(kind, digest)] = result
        if len(self._scan_cache) > 20_000:
            self._scan_cache.popitem(last=False)
        return result

    def _scan(self, kind: str, item: Mapping[str, Any]) -> ScanResult:
        findings: list[Finding] = []
        current: Mapping[str, Any] = item
        changed = False
        for sanitizer in self.sanitizers:
            try:
                scanned = sanitizer.scan(kind, current)
            except Exception as exc:
                raise GuardUnavailable(f"sanitizer {type(sanitizer).__name__} failed: {exc!r}") from exc
            findings.extend(scanned.findings)
            if scanned.item is not None:
                current = scanned.item
                changed = True
        return ScanResult(tuple(findings), current if changed else None)

    def inspect_result(
        self,
        kind: str,
        result: Mapping[str, Any],
        *,
        enabled: bool | None = None,
        server: str | None = None,
    ) -> tuple[dict[str, Any], ResultSummary]:
        """Size-check a call/get/read result and, if enabled, scan it as the server's policy says.

        A blocked result is refused (``AccessDenied``) unless the policy is
        report-only; a rewritten one (secrets masked, invisible text
        stripped) replaces the original where the policy redacts or strips.
        A result that nothing rewrote comes back as the very dict it was (a
        copy if it was another mapping): the caller can tell "unchanged" by
        identity instead of comparing the two.
        """
        size = check_size(result, self.size_limits.max_result_bytes, "result")
        is_error = bool(result.get("isError", False))
        out = result if type(result) is dict else dict(result)
        findings: tuple[Finding, ...] = ()
        if not ((self.inspect_results if enabled is None else enabled) and self.sanitizers):
            return out, ResultSummary(size, is_error)
        policy = self.sanitize_policy(server or self.server or "")
        if policy.scan_results:
            scanned = self._scan(kind, result)
            findings = scanned.findings
            action = verdict_action(policy, scanned)
            if action == "withhold":
                raise AccessDenied(
                    "result withheld: "
                    + "; ".join(f"{f.rule} at {f.field}" for f in findings if f.severity != "low")
                )
            if (
                scanned.item is not None
                and not policy.shadow
                and (action == "rewrite" or policy.redact_results)
            ):
                out = dict(scanned.item)
        return out, ResultSummary(size=size, is_error=is_error, findings=findings)


def _principal_size(principal: Principal) -> int:
    """Characters a principal's visibility cache key holds (64 more per role and group)."""
    roles, groups = principal.roles, principal.groups
    total = len(principal.subject) + len(principal.tenant or "") + 64 * (len(roles) + len(groups))
    for name in roles:
        total += len(name)
    for name in groups:
        total += len(name)
    return total
