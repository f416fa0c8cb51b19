"""``audit query`` text lines say who decided an approval, not only who ran the command."""

from __future__ import annotations

from mcp_guard.cli.audit import format_event


def test_an_approval_decision_line_names_the_approver() -> None:
    record = {
        "time": 1_767_600_000.0,
        "seq": 7,
        "principal": {"subject": "root", "auth_method": "local"},
        "decision": "allow",
        "method": "approvals.approve",
        "server": "ledger",
        "target": "apr-1",
        "rule": "big-payments",
        "approval": {"id": "apr-1", "status": "approved", "requested_by": "pat", "decided_by": "carol"},
    }
    line = format_event(record)
    assert "approval=apr-1 approved by carol (requested by pat)" in line
    pending = {**record, "approval": {"id": "apr-2", "status": "pending", "requested_by": "pat"}}
    assert "approval=apr-2 pending (requested by pat)" in format_event(pending)


def test_an_approver_name_cannot_forge_a_line() -> None:
    approval = {"id": "a", "status": "denied", "decided_by": "e\nvil"}
    record = {"decision": "allow", "method": "x", "approval": approval}
    assert "\n" not in format_event(record)
