"""`make run`'s demo tenants: the same ids and keys on every start, and never part of what is deployed."""

from __future__ import annotations

from pathlib import Path

from chatsphere.logic.api_keys import API_KEY_RE
from infra.local.run import DEMO_TENANTS

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_keys_are_well_formed_and_name_distinct_tenants() -> None:
    matches = [API_KEY_RE.match(key) for _, key in DEMO_TENANTS]
    assert all(matches), DEMO_TENANTS
    assert len({m.group(1) for m in matches if m}) == len(DEMO_TENANTS) == 2


def test_no_deployed_code_knows_a_demo_tenant() -> None:
    # functions/ is every function's CodeUri: a demo id or key there could reach a deployed stack.
    demo = [part for _, key in DEMO_TENANTS for part in (key, key.split(".")[0].removeprefix("cs_"))]
    sources = list((ROOT / "functions").rglob("*.py"))
    assert sources
    found = [(path.name, value) for path in sources for value in demo if value in path.read_text()]
    assert found == []
