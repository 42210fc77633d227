"""`chatsphere retention run` against moto: a dry run counts exactly and writes nothing; a real pass removes exactly
what is due and prints its run record's counts; errors of use are one line and exit 2."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.helpers import call
from tests.integration.test_reconcile import main
from tests.integration.test_retention import interaction, items, settings, subject, texts

TABLES = ("SubjectsTable", "TenantsTable", "RequestsTable")


def retention_run(*args: str) -> dict[str, Any]:
    status, out, err = main("retention", "run", *args)
    assert status == 0 and err == "", err
    assert out.count("\n") == 1  # one JSON document
    report: dict[str, Any] = json.loads(out)
    return report


def snapshot(aws: Any) -> dict[str, list[dict[str, Any]]]:
    return {table: sorted(items(aws, table), key=repr) for table in TABLES}


@pytest.fixture
def seeded(aws: Any) -> tuple[str, str]:
    """Acme keeps interactions 30 days: three are expired, one more is expired but held, two are not.
    Globex keeps the defaults (730 days): nothing of it is due."""
    from tests.integration.helpers import new_tenant

    acme, globex = new_tenant("Acme")[0], new_tenant("Globex")[0]
    settings(acme, interactions={"days": 30, "action": "delete"})
    for subject_id in ("u-1", "u-2", "held"):
        subject(acme, subject_id)
    interaction(acme, "u-1", "old one", 400)
    interaction(acme, "u-1", "old two", 40)
    interaction(acme, "u-2", "old three", 31)
    interaction(acme, "held", "kept for the claim", 100)
    interaction(acme, "u-1", "recent", 29)
    interaction(acme, "u-2", "today", 0)
    hold = {"reason": "claim 7", "categories": ["interactions"]}
    assert call("PUT", "/v1/subjects/held/legal-hold", tenant=acme, body=hold).status in (200, 201)
    subject(globex, "g-1")
    interaction(globex, "g-1", "a year ago", 365)
    return acme, globex


def test_a_dry_run_prints_the_exact_counts_and_writes_nothing(aws: Any, seeded: tuple[str, str]) -> None:
    acme, globex = seeded
    before = snapshot(aws)
    report = retention_run("--dry-run")
    assert report["dry_run"] is True and report["as_of"].endswith("Z")
    assert report["tenants"] == {
        acme: {"would_remove": {"interactions": 3}, "kept_by_hold": {"interactions": 1}, "still_active_profiles": 0},
        globex: {"would_remove": {}, "kept_by_hold": {}, "still_active_profiles": 0},
    }
    assert snapshot(aws) == before  # no item removed, refiled or added (no run record, no lease)
    assert call("GET", "/v1/retention/runs", tenant=acme).body["items"] == []
    # --tenant restricts it to one tenant
    assert list(retention_run("--dry-run", "--tenant", globex)["tenants"]) == [globex]


def test_a_real_pass_removes_exactly_what_is_due_and_prints_the_runs_counts(aws: Any, seeded: tuple[str, str]) -> None:
    acme, globex = seeded
    report = retention_run()
    assert report["dry_run"] is False
    ran = report["tenants"][acme]
    assert ran["status"] == "completed" and ran["removed"] == {"interactions": 3}
    assert ran["kept_by_hold"] == {"interactions": 1} and ran["still_active_profiles"] == 0
    assert report["tenants"][globex]["status"] == "completed" and report["tenants"][globex]["removed"] == {}
    assert texts(acme, "u-1") == ["recent"] and texts(acme, "u-2") == ["today"]
    assert texts(acme, "held") == ["kept for the claim"] and texts(globex, "g-1") == ["a year ago"]
    # the printed run is the tenant's run record
    (record,) = call("GET", "/v1/retention/runs", tenant=acme).body["items"]
    assert record["run_id"] == ran["run_id"] and record["removed"] == ran["removed"]
    # ids and counts only: no text, no subject id
    printed = json.dumps(report)
    assert not any(value in printed for value in ("old one", "u-1", "u-2", "held", "claim 7"))
    # a second pass finds nothing more
    again = retention_run("--tenant", acme)
    assert list(again["tenants"]) == [acme] and again["tenants"][acme]["removed"] == {}


def test_a_tenant_whose_run_holds_the_lease_is_reported_skipped(aws: Any, seeded: tuple[str, str]) -> None:
    from chatsphere.bootstrap import wiring
    from chatsphere.logic import retention
    from chatsphere.models.common import iso, utc_now
    from chatsphere.models.retention import RetentionJob

    acme, _ = seeded
    now = utc_now()
    job = RetentionJob(tenant_id=acme, run_id=retention.new_run_id(now), as_of=iso(now))
    assert retention.run_chunk(wiring().retention, job, now, 1).outcome == "continue"  # a scheduled run, still going
    left = [texts(acme, s) for s in ("u-1", "u-2", "held")]
    report = retention_run("--tenant", acme)
    assert report["tenants"][acme]["status"] == "skipped" and report["tenants"][acme]["removed"] == {}
    assert report["tenants"][acme]["run_id"] != job.run_id
    assert [texts(acme, s) for s in ("u-1", "u-2", "held")] == left  # the skipped pass removed nothing


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (("--tenant", "no-such-tenant"), "no tenant no-such-tenant"),
        (("--dry-run", "--tenant", "no-such-tenant"), "no tenant no-such-tenant"),
        (("--as-of", "2024-01-01T00:00:00"), "timezone"),
        (("--as-of", "yesterday"), "not an ISO time"),
        (("--as-of", "2999-01-01T00:00:00Z"), "future"),
    ],
)
def test_an_error_of_use_is_one_line_and_exit_2(aws: Any, args: tuple[str, ...], said: str) -> None:
    status, out, err = main("retention", "run", *args)
    assert status == 2 and out == "" and err.count("\n") == 1 and said in err and "Traceback" not in err


def test_a_missing_setting_is_named_in_one_line_and_exit_2(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RETENTION_QUEUE_URL")
    status, out, err = main("retention", "run", "--dry-run")
    assert status == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert "RETENTION_QUEUE_URL" in err and "SUBJECTS_TABLE" not in err


@pytest.fixture
def environment_restored() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def test_local_takes_the_retention_functions_environment_from_the_stack_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, environment_restored: None
) -> None:
    """No AWS here: the names come from the stack file (no setting is missing), and its endpoint does not answer
    (past the check that something answers there, which the stack's moto server would)."""
    from chatsphere import bootstrap, cli
    from chatsphere.config import get_config
    from chatsphere.dal import clients

    for name in ("RETENTION_QUEUE_URL", "SUBJECTS_TABLE", "TENANTS_TABLE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    stack = tmp_path / "stack.json"
    status, _, err = main("retention", "run", "--local", "--stack-file", str(stack))
    assert status == 2 and err.count("\n") == 1 and "make run" in err
    environment = {"SUBJECTS_TABLE": "subjects", "RETENTION_QUEUE_URL": "http://127.0.0.1:9/q"}
    environment |= {"TENANTS_TABLE": "tenants", "REQUESTS_TABLE": "requests", "SUBJECT_KEYS_TABLE": "keys"}
    environment |= {"IDEMPOTENCY_TABLE": "idem", "DATA_BUCKET": "data", "DATA_KEY_ID": "key", "STACK_BUCKETS": "data"}
    environment |= {"EXPORT_QUEUE_URL": "x", "DELETION_QUEUE_URL": "d", "EVENT_BUS_NAME": "bus"}
    environment |= {"DELIVERY_ROLE_ARN": "arn:aws:iam::123456789012:role/delivery"}
    environment |= {"OUTBOX_TABLE": "outbox", "LEDGER_TABLE": "ledger", "LEDGER_BUCKET": "ev", "LEDGER_KEY_ID": "k"}
    for name in environment:
        monkeypatch.delenv(name, raising=False)
    stack.write_text(
        json.dumps(
            {
                "aws_endpoint_url": "http://127.0.0.1:9",
                "aws_env": {"AWS_DEFAULT_REGION": "us-east-1"},
                "resources": {},
                "functions": {"RetentionFunction": {"environment": environment}},
            }
        )
    )
    clients.reset()
    monkeypatch.setattr(cli, "_answers", lambda url: True)
    try:
        status, _, err = main("retention", "run", "--dry-run", "--local", "--stack-file", str(stack))
    finally:
        clients.reset()
        get_config.cache_clear()
        bootstrap.wiring.cache_clear()
    assert status == 1 and err.count("\n") == 1 and "not reachable" in err and "Traceback" not in err
    # The calls went to the stack's endpoint (nothing answers there), and the process's environment is as it was.
    assert "SUBJECTS_TABLE" not in os.environ and "AWS_ENDPOINT_URL" not in os.environ
