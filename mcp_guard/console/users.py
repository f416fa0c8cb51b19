"""The Users and keys page: API keys (list, create, revoke) and local users (list, unlock).

Keys are those ``mcp-guard keys list`` lists, in the guard's state store;
creating one is ``keys create`` (the same :func:`create_api_key`): the key is
shown once, in the answer to the form, and exists nowhere else afterwards -
only its SHA-256 is stored, and no page, log line or audit event holds it.
If its creation cannot be audited, it is revoked at once and never shown.
Revoking is ``keys revoke``: the key fails at once everywhere, and console
sessions opened with it end. Users are those of ``[authn.passwords]``
``users_file``; **Unlock** clears their lockouts as ``mcp-guard users unlock``
does. An administrator bound to a tenant sees, creates, revokes and unlocks
only within that tenant, and grants only roles they hold themselves (an
administrator of no tenant, who also approves servers and pins, may grant any).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..authn._util import parse_duration
from ..authn.api_keys import ApiKeyRecord, create_api_key, list_api_keys, revoke_api_key
from ..authn.revocation import RevocationList
from ..errors import ConfigError
from .core import Console
from .html import attr, csrf_field, esc, message, page, table, when
from .servers import tenant_of
from .sessions import ConsoleSession, new_token

#: Longest subject, role list, tenant and description a form may set.
MAX_FIELD = 200
_NAME = re.compile(r"^[^\s,]+$")
_KEY_COLUMNS = ["Id", "Subject", "Roles", "Tenant", "Description", "Created", "Expires", "Last used"]
_KEY_COLUMNS += ["State", "Action"]


def _visible(session: ConsoleSession, tenant: str | None) -> bool:
    """An admin of a tenant sees only that tenant's keys and users; one of no tenant sees all."""
    mine = tenant_of(session)
    return mine is None or tenant == mine


def _key_rows(
    session: ConsoleSession, keys: list[tuple[ApiKeyRecord, float | None]], now: float
) -> list[list[str]]:
    rows = []
    for record, used in keys:
        if not _visible(session, record.tenant):
            continue
        if record.revoked_at is not None:
            state = f"revoked {when(record.revoked_at)}"
        elif record.expires_at is not None and record.expires_at <= now:
            state = "expired"
        else:
            state = "active"
        action = ""
        if session.csrf and record.revoked_at is None:
            action = (
                f'<form method="post" action={attr("/admin/keys/" + quote(record.id, safe="") + "/revoke")}>'
                f'{csrf_field(session.csrf)}<button type="submit">Revoke</button></form>'
            )
        rows.append(
            [
                f"<code>{esc(record.id)}</code>",
                esc(record.subject),
                esc(", ".join(record.roles)),
                esc(record.tenant),
                esc(record.description),
                esc(when(record.created_at)),
                esc(when(record.expires_at) or "never"),
                esc(when(used) or "never"),
                esc(state),
                action,
            ]
        )
    return rows


#: Each rendered Create form carries a single-use token, remembered this long once posted.
_ONCE = "console:form-once:"
_ONCE_TTL = 86400.0


def _create_form(session: ConsoleSession) -> str:
    if not session.csrf:
        return ""
    tenant = (
        '<label>tenant <input type="text" name="tenant" maxlength="200"></label> '
        if tenant_of(session) is None
        else f"<span>tenant {esc(tenant_of(session))}</span> "
    )
    return (
        '<h2>Create a key</h2><form class="filters" method="post" action="/admin/keys">'
        f"{csrf_field(session.csrf)}"
        f'<input type="hidden" name="once" value={attr(new_token())}>'
        '<label>subject <input type="text" name="subject" maxlength="200" required></label> '
        '<label>roles <input type="text" name="roles" maxlength="200" placeholder="analyst, admin"></label> '
        f"{tenant}"
        '<label>expires <input type="text" name="expires" maxlength="20" placeholder="30d (default: never)">'
        "</label> "
        '<label>description <input type="text" name="description" maxlength="200"></label> '
        '<button type="submit">Create</button></form>'
    )


async def _user_rows(console: Console, session: ConsoleSession) -> str:
    if console.login is None:
        return "<p>No local users: <code>[authn.passwords]</code> is not configured.</p>"
    rows = []
    try:
        everyone = console.login.users.all()
    except ConfigError as exc:  # a hand-edited users file: say where it is wrong, keep the keys usable
        return f'<p class="error">The users file cannot be read: {esc(exc)}</p>'
    for user in everyone:
        if not _visible(session, user.tenant):
            continue
        locks = await console.login.lockout.status(user.name, person=console.login.person(user.name))
        locked = ", ".join(f"{scope} ({int(left)}s)" for scope, left in sorted(locks.items()))
        action = ""
        if session.csrf:
            action = (
                f'<form method="post" action={attr("/admin/users/" + quote(user.name, safe="") + "/unlock")}>'
                f'{csrf_field(session.csrf)}<button type="submit">Unlock</button></form>'
            )
        rows.append(
            [
                esc(user.name),
                esc(", ".join(user.roles)),
                esc(user.tenant),
                "yes" if user.totp_secret else "no",
                "yes" if user.disabled else "no",
                esc(locked or "no"),
                action,
            ]
        )
    return table(
        ["User", "Roles", "Tenant", "TOTP", "Disabled", "Locked out", "Action"], rows, "No local user."
    )


async def users_page(console: Console, request: Request) -> Response:
    session = await console.admin(request)
    store = console.guard.store
    if store is None:
        return message("Users and keys", "no state store ([guard] state): keys are unavailable", 503, session)
    keys = await list_api_keys(store)
    body = (
        "<h2>API keys</h2><p>Keys created here or with <code>mcp-guard keys create</code> (keys written "
        "in guard.toml are not listed). A key is shown once, when it is created.</p>"
        + table(
            _KEY_COLUMNS,
            _key_rows(session, keys, console.clock()),
            "No stored key.",
        )
        + _create_form(session)
        + "<h2>Local users</h2>"
        + await _user_rows(console, session)
    )
    return page("Users and keys", body, session)


@dataclass(frozen=True, slots=True)
class KeyForm:
    """The ``create_api_key`` arguments a Create form asks for."""

    subject: str
    roles: tuple[str, ...]
    tenant: str | None
    expires_in: float | None
    description: str


def parse_key_form(session: ConsoleSession, fields: dict[str, str]) -> KeyForm | str:
    """The key the form asks for, or what is wrong with it (naming the field)."""
    subject = fields.get("subject", "").strip()
    if not subject or len(subject) > MAX_FIELD:
        return "subject: required, at most 200 characters"
    roles = tuple(r for r in re.split(r"[\s,]+", fields.get("roles", "").strip()) if r)
    if len(roles) > 20 or any(len(r) > 64 or not _NAME.match(r) for r in roles):
        return "roles: names separated by commas or spaces"
    beyond = sorted(set(roles) - set(session.roles))
    if tenant_of(session) is not None and beyond:  # bound to a tenant: no key can outrank its maker
        return f"roles: you may only grant roles you hold (not {', '.join(beyond)})"
    tenant = tenant_of(session)  # an admin of a tenant creates keys of that tenant only
    if tenant is None:
        tenant = fields.get("tenant", "").strip()[:MAX_FIELD] or None
    expires_in = None
    if fields.get("expires", "").strip():
        try:
            expires_in = parse_duration(fields["expires"].strip())
        except ValueError:
            return f"expires: {fields['expires'][:20]!r} is not a duration; use e.g. 30d, 12h, 90m"
        if expires_in <= 0:
            return "expires: must be a positive duration"
    return KeyForm(subject, roles, tenant, expires_in, fields.get("description", "").strip()[:MAX_FIELD])


def _revocations(console: Console) -> RevocationList | None:
    """This process's own revocation list: a revoked key fails here at once, not when a cache expires."""
    revocations = getattr(console.guard.resolver, "revocations", None)
    return revocations if isinstance(revocations, RevocationList) else None


async def create_key(console: Console, request: Request) -> Response:
    session = await console.admin(request, write=True)
    fields = await console.form(request, session)
    store = console.guard.store
    if store is None:
        return message("Unavailable", "no state store: keys are unavailable", 503, session)
    form = parse_key_form(session, fields)
    if isinstance(form, str):
        console.record("console/keys.create", "deny", session.principal, request, reasons=(form,))
        return message("Bad request", form, 400, session)
    console.ready()
    once = fields.get("once", "")
    if once and not await store.set_if_absent(_ONCE + once[:64], b"1", ttl=_ONCE_TTL):
        # The same form posted again (a double click, a browser resending it): one form, one key.
        why = "this form was already submitted; its key was created once"
        console.record("console/keys.create", "deny", session.principal, request, reasons=(why,))
        return message("Already submitted", why, 409, session)
    key, record = await create_api_key(
        store,
        form.subject,
        roles=form.roles,
        tenant=form.tenant,
        expires_in=form.expires_in,
        description=form.description,
        clock=console.clock,
    )
    reasons = (f"for {record.subject}, roles {','.join(record.roles) or '-'}",)
    event = console.event(
        "console/keys.create", "allow", session.principal, request, target=record.id, reasons=reasons
    )

    async def undo() -> None:
        # A key nobody can trace is never handed out: revoked at once and not shown. Its form
        # may then be posted again: no key came of it, so "created once" would be untrue.
        await revoke_api_key(store, record.id, _revocations(console))
        if once:
            await store.delete(_ONCE + once[:64])

    await console.record_action(event, undo, session=session)
    body = (
        f"<p>Key <code>{esc(record.id)}</code> for {esc(record.subject)} created. Copy it now: it is shown "
        "this once, and only its hash is kept.</p>"
        f'<p class="key"><code>{esc(key)}</code></p>'
        '<p><a href="/admin/users">Back to users and keys</a></p>'
    )
    return page("Key created", body, session)


async def revoke_key(console: Console, request: Request) -> Response:
    session = await console.admin(request, write=True)
    await console.form(request, session)
    key_id = request.path_params["key_id"]
    store = console.guard.store
    if store is None:
        return message("Unavailable", "no state store: keys are unavailable", 503, session)
    known = {r.id: r for r, _ in await list_api_keys(store)}
    record = known.get(key_id)
    if record is None or not _visible(session, record.tenant):
        why = ("no such key",)
        console.record("console/keys.revoke", "deny", session.principal, request, reasons=why, target=key_id)
        return message("Not found", f"no API key with id {key_id!r}", 404, session)
    if record.revoked_at is not None:  # a second submission: the first revocation's time stands
        why = ("already revoked",)
        console.record("console/keys.revoke", "deny", session.principal, request, reasons=why, target=key_id)
        return message("Conflict", f"API key {key_id!r} is already revoked", 409, session)
    console.ready()
    await revoke_api_key(store, key_id, _revocations(console))
    await console.record_action(  # a revocation only takes access away: it stands
        console.event("console/keys.revoke", "allow", session.principal, request, target=key_id),
        session=session,
    )
    return RedirectResponse("/admin/users", status_code=303)


async def unlock_user(console: Console, request: Request) -> Response:
    session = await console.admin(request, write=True)
    await console.form(request, session)
    name = request.path_params["name"]
    user = console.login.users.get(name) if console.login is not None else None
    if console.login is None or user is None or not _visible(session, user.tenant):
        why = ("no such user",)
        console.record("console/users.unlock", "deny", session.principal, request, reasons=why, target=name)
        return message("Not found", f"no local user {name!r}", 404, session)
    console.ready()
    cleared = await console.login.lockout.unlock(name, person=console.login.person(name))
    reasons = (f"cleared: {', '.join(cleared)}",) if cleared else ()
    await console.record_action(
        console.event(
            "console/users.unlock", "allow", session.principal, request, target=name, reasons=reasons
        ),
        session=session,
    )
    return RedirectResponse("/admin/users", status_code=303)
