"""The template numbers and grants the orphan sweep (issue 14, item 5) relies on."""

from __future__ import annotations

from typing import Any

from infra import template
from tests.infra.test_template import as_list, functions

# The functions that may write under a subject's prefix in the bucket, each from a call that checked the subject
# before an erasure closed it: Intake (a long interaction text), Export (a package).
WRITERS_UNDER_A_SUBJECT = ("IntakeFunction", "ExportFunction")


def _statements(function: str) -> list[dict[str, Any]]:
    policies = functions(template.load())[function]["Policies"]
    return [s for policy in policies if isinstance(policy, dict) for s in policy.get("Statement", [])]


def test_an_erasure_settles_only_once_every_writer_under_its_prefix_has_timed_out() -> None:
    from chatsphere.logic.sweep import SETTLE

    timeouts = {name: functions(template.load())[name]["Timeout"] for name in WRITERS_UNDER_A_SUBJECT}
    assert SETTLE.total_seconds() >= max(timeouts.values()), timeouts


def test_intake_may_remove_the_version_a_refused_interaction_wrote() -> None:
    granted = [
        s for s in _statements("IntakeFunction") if s["Effect"] == "Allow" and "s3:PutObject" in as_list(s["Action"])
    ]
    assert granted and all("s3:DeleteObjectVersion" in as_list(s["Action"]) for s in granted)


def test_retention_may_list_and_remove_versions_and_forget_sealed_ids() -> None:
    actions = {a for s in _statements("RetentionFunction") if s["Effect"] == "Allow" for a in as_list(s["Action"])}
    assert {"s3:ListBucketVersions", "s3:DeleteObjectVersion", "dynamodb:Query", "dynamodb:UpdateItem"} <= actions
