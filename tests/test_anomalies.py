"""The anomaly detectors on generated trails with injected anomalies, and ``audit anomalies``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_guard.audit.anomaly import KINDS, AnomalySettings, Detector, Event, from_record
from mcp_guard.cli.main import main
from mcp_guard.config import config_from_dict
from mcp_guard.errors import ConfigError

from .anomaly_trails import generate, score


def events(records: list[dict[str, Any]]) -> list[Event]:
    return [e for e in map(from_record, records) if e is not None]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_injected_anomaly_is_found_and_nothing_else(seed: int) -> None:
    trail = generate(seed)
    findings = Detector().run(events(trail.records))
    result = score(findings, trail.labels)
    assert set(result) == set(KINDS)
    for kind, figures in result.items():
        assert (kind, figures["recall"], figures["precision"]) == (kind, 1.0, 1.0), figures


def test_a_normal_trail_gives_no_finding() -> None:
    trail = generate(101, users=30, inject=False)
    assert trail.labels == []
    assert Detector().run(events(trail.records)) == []


def test_since_reports_only_later_findings_but_learns_from_everything() -> None:
    trail = generate(4)
    evs = events(trail.records)
    first = min(lab.start for lab in trail.labels)
    everything = Detector().run(evs)
    later = Detector().run(evs, since=first)
    assert later == everything  # the injected ones are all after the normal weeks
    assert Detector().run(evs, since=max(lab.end for lab in trail.labels) + 1) == []


def test_disabled_kinds_stay_quiet() -> None:
    trail = generate(5)
    only = AnomalySettings(kinds=["auth-failures", "new-source"]).thresholds()
    kinds = {f.kind for f in Detector(only).run(events(trail.records))}
    assert kinds == {"auth-failures", "new-source"}


def test_bursts_fire_once_per_window() -> None:
    burst = [
        Event(id=f"e{i}", time=1000.0 + i, kind="authn", decision="deny", source_ip="192.0.2.1")
        for i in range(35)
    ]
    findings = Detector().run(burst)
    assert [f.kind for f in findings] == ["auth-failures"]
    f = findings[0].as_dict()
    assert f["source_ip"] == "192.0.2.1" and f["subject"] is None
    assert f["events"] == [f"e{i}" for i in range(10)]
    assert f["score"] == 6.67  # ten in 9 s, where the threshold is ten in 60 s
    assert f["window"] == ["1970-01-01T00:16:40.000Z", "1970-01-01T00:16:49.000Z"]
    assert set(f) == {
        *("kind", "subject", "vouched_by", "source_ip", "server", "target"),
        *("score", "window", "events", "why"),
    }
    assert f["vouched_by"] is None
    # Another window later, another finding.
    assert (
        len(
            Detector().run(
                [
                    *burst,
                    *(Event(f"x{i}", 1100.0 + i, "authn", "deny", source_ip="192.0.2.1") for i in range(10)),
                ]
            )
        )
        == 2
    )


_values = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "id": st.text(max_size=4),
                "time": st.one_of(st.floats(0, 1e6), _values),
                "event": st.sampled_from(["request", "authn", "lifecycle", "anomaly", 3]),
                "decision": st.sampled_from(["allow", "deny", "error"]),
                "principal": st.one_of(
                    _values, st.fixed_dictionaries({"subject": _values, "country": _values})
                ),
                "source_ip": _values,
                "server": _values,
                "target": _values,
                "reasons": st.one_of(_values, st.lists(_values, max_size=2)),
            }
        ),
        max_size=60,
    )
)
def test_any_records_in_any_order_never_crash_and_findings_name_fed_events(
    records: list[dict[str, Any]],
) -> None:
    small = AnomalySettings(
        auth_failures=2, denials=2, min_history=1, rate_min=2, rate_history=1
    ).thresholds()
    evs = sorted(events(records), key=lambda e: e.time)
    ids = {e.id for e in evs}
    findings = Detector(small).run(evs)
    assert all(set(f.events) <= ids and f.kind in KINDS for f in findings)
    assert Detector(small).run(evs) == findings  # deterministic
    assert Detector(small).run(evs, since=float("inf")) == []


def test_config_section_is_validated_with_file_line_and_suggestion(tmp_path: Path) -> None:
    config_from_dict({"anomalies": {"auth_failures": 5, "webhooks": [{"url": "https://hooks.example/x"}]}})
    with pytest.raises(ConfigError) as err:
        config_from_dict({"anomalies": {"auth_failure": 5}})
    assert "auth_failures" in str(err.value)
    path = tmp_path / "guard.toml"
    path.write_text('[guard]\nstate = "memory://"\n\n[anomalies]\ntimezone = "Mars/Olympus"\n')
    assert main(["audit", "anomalies", "--config", str(path), str(tmp_path / "none.db")]) == 2
    from mcp_guard.config import load_config

    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.line == 5 and "Mars/Olympus" in str(err.value)
    path.write_text('[anomalies]\nkinds = ["auth-failure"]\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.line == 2 and "anomalies.kinds" in str(err.value)
    path.write_text('[anomalies]\naction = "lock"\n\n[[anomalies.webhooks]]\nurl = "https://10.0.0.9/x"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.line == 4 and "non-public address" in str(err.value)


def test_cli_on_a_jsonl_trail(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trail = generate(6)
    store = tmp_path / "audit.jsonl"
    store.write_text("".join(json.dumps({**r, "seq": i + 1}) + "\n" for i, r in enumerate(trail.records)))
    assert main(["audit", "anomalies", "--json", str(store)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {f["kind"] for f in lines} == set(KINDS) and len(lines) == len(trail.labels)
    assert main(["audit", "anomalies", str(store)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:4] == ["TIME", "(UTC)", "KIND", "SUBJECT"] and len(table) == len(lines) + 1
    assert main(["audit", "anomalies", "--since", "now", str(store)]) == 0
    assert capsys.readouterr().err.strip() == "no anomalies"


def test_audit_events_carry_the_country_when_the_principal_has_one() -> None:
    from mcp_guard.model import Principal

    assert "country" not in Principal("alice").summary()
    seen = Principal("alice", country="DE").summary()
    event = from_record({"id": "1", "time": 5.0, "event": "request", "decision": "allow", "principal": seen})
    assert event is not None and (event.subject, event.country) == ("alice", "DE")


def test_cli_on_a_missing_or_foreign_store_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import sqlite3

    assert main(["audit", "anomalies", str(tmp_path / "missing.db")]) == 1
    assert "no audit store" in capsys.readouterr().err
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE notes (x)")
    assert main(["audit", "anomalies", "--json", str(other)]) == 1
    assert "is not an audit store" in capsys.readouterr().err
