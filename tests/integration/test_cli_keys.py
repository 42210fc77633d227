"""`chatsphere tenants list` and `chatsphere keys create|list|revoke` against moto: several keys per tenant, so that a
key is rotated without downtime; a revoked key stops working when the authorizer's cached answer expires; every
error of use is one line and exit 2; `--local` finds the running stack from any directory."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from chatsphere import cli
from infra import template
from tests.integration.helpers import authorize, call_with_key, gateway, new_tenant, scan
from tests.integration.parallel import shared_aws_fixture
from tests.integration.test_reconcile import main

shared_aws = pytest.fixture(shared_aws_fixture, name="shared_aws")


def run(*argv: str) -> Any:
    status, out, err = main(*argv)
    assert status == 0 and err == "", err
    assert out.count("\n") == 1  # one JSON document
    return json.loads(out)


def refused(*argv: str) -> str:
    """An error of use: exit 2, nothing on stdout, one line on stderr, no traceback."""
    status, out, err = main(*argv)
    assert status == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err, (status, out, err)
    return err


def works(api_key: str) -> bool:
    status = call_with_key(api_key, "GET", "/v1/settings").status
    assert status in (200, 403), status
    return status == 200


def reauthorize_every() -> int:
    _, spec = template.authorizer()
    return int(spec["Identity"]["ReauthorizeEvery"])


def test_tenants_list_prints_each_tenants_id_name_creation_and_status(aws: Any) -> None:
    assert run("tenants", "list") == []
    acme, globex = new_tenant("Acme")[0], new_tenant("Globex")[0]
    listed = run("tenants", "list")
    assert sorted((t["tenant_id"], t["name"]) for t in listed) == sorted([(acme, "Acme"), (globex, "Globex")])
    fields = {"tenant_id", "name", "created_at", "status"}
    assert all(set(t) == fields and t["created_at"].endswith("Z") and t["status"] == "active" for t in listed)


def test_keys_create_and_list_never_print_a_stored_key_or_its_hash(aws: Any) -> None:
    tenant, first = new_tenant("Acme")
    created = run("keys", "create", "--tenant", tenant)
    assert set(created) == {"tenant_id", "key_id", "api_key"} and created["tenant_id"] == tenant
    assert re.fullmatch(r"[0-9a-f]{12}", created["key_id"]) and created["api_key"].startswith(f"cs_{tenant}.")
    listed = run("keys", "list", "--tenant", tenant)
    assert listed["tenant_id"] == tenant and len(listed["keys"]) == 2
    assert created["key_id"] in [k["key_id"] for k in listed["keys"]]
    assert all(k["status"] == "active" and k["created_at"].endswith("Z") for k in listed["keys"])
    printed = json.dumps(listed)
    stored_hashes = [item["sk"]["S"].removeprefix("APIKEY#") for item in scan(aws.refs["TenantsTable"])]
    stored_hashes = [h for h in stored_hashes if len(h) == 64]
    assert len(stored_hashes) == 2 and not any(h in printed for h in stored_hashes)
    assert first not in printed and created["api_key"] not in printed
    # the key itself is stored nowhere
    assert created["api_key"] not in json.dumps(scan(aws.refs["TenantsTable"]), default=str)


def test_two_keys_both_work_and_revoking_one_leaves_the_other(aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [1000.0]
    monkeypatch.setattr(gateway(), "clock", lambda: now[0])
    tenant, old = new_tenant("Acme")
    new = run("keys", "create", "--tenant", tenant)
    assert works(old) and works(new["api_key"])  # both at once: clients switch over at their own pace
    (old_id,) = [k["key_id"] for k in run("keys", "list", "--tenant", tenant)["keys"] if k["key_id"] != new["key_id"]]
    revoked = run("keys", "revoke", "--tenant", tenant, old_id)
    assert revoked["key_id"] == old_id and revoked["status"] == "revoked" and revoked["revoked_at"].endswith("Z")
    # the authorizer refuses it at once; API Gateway's cached answer may let it through until it expires
    assert authorize(f"Bearer {old}")["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    now[0] += reauthorize_every() - 1
    assert works(old)
    now[0] += 2
    assert not works(old) and works(new["api_key"])
    statuses = {k["key_id"]: k["status"] for k in run("keys", "list", "--tenant", tenant)["keys"]}
    assert statuses == {old_id: "revoked", new["key_id"]: "active"}
    # revoking it again changes nothing (the first revocation's time stays)
    assert run("keys", "revoke", "--tenant", tenant, old_id) == revoked


def test_the_readme_states_the_authorizers_cache_time() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    seconds = reauthorize_every()
    assert f"up to {seconds} s" in readme
    assert re.findall(r"up to (\d+) s \(the authorizer's cache\)", readme) == [str(seconds)]


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (("keys", "create", "--tenant", "t0000000000000000"), "no tenant t0000000000000000"),
        (("keys", "list", "--tenant", "t0000000000000000"), "no tenant t0000000000000000"),
        (("keys", "revoke", "--tenant", "t0000000000000000", "0123456789ab"), "no tenant t0000000000000000"),
        (("keys", "revoke", "--tenant", "TENANT", "0123456789ab"), "no key 0123456789ab"),
        (("keys", "revoke", "--tenant", "TENANT", "cs_secret"), "12 hex digits"),
    ],
)
def test_an_unknown_tenant_or_key_is_one_line_and_exit_2(aws: Any, argv: tuple[str, ...], said: str) -> None:
    tenant = new_tenant("Acme")[0]
    before = scan(aws.refs["TenantsTable"])
    err = refused(*[tenant if a == "TENANT" else a for a in argv])
    assert said in err
    assert scan(aws.refs["TenantsTable"]) == before


@pytest.mark.parametrize(
    "argv", [("tenants", "list"), ("keys", "create", "--tenant", "t1"), ("keys", "list", "--tenant", "t1")]
)
def test_a_missing_setting_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch, argv: tuple[str, ...]) -> None:
    monkeypatch.delenv("TENANTS_TABLE", raising=False)
    assert "TENANTS_TABLE" in refused(*argv)


# ------------------------------------------------------------------ --local, from any directory
@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory outside the repository, and no CHATSPHERE_LOCAL_DIR."""
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("CHATSPHERE_LOCAL_DIR", raising=False)
    return cwd


def test_local_finds_the_stack_through_chatsphere_local_dir_from_any_directory(
    shared_aws: Any, elsewhere: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    local = tmp_path / "the-stack"
    local.mkdir()
    stack = {"aws_endpoint_url": os.environ["AWS_ENDPOINT_URL"], "resources": dict(shared_aws.refs)}
    (local / "stack.json").write_text(json.dumps(stack))
    monkeypatch.setenv("CHATSPHERE_LOCAL_DIR", str(local))
    tenant = new_tenant("Acme")[0]
    monkeypatch.delenv("TENANTS_TABLE")  # the table's name comes from the stack file
    assert [t["tenant_id"] for t in run("tenants", "list", "--local")] == [tenant]
    key = run("keys", "create", "--tenant", tenant, "--local")
    assert run("keys", "revoke", "--tenant", tenant, key["key_id"], "--local")["status"] == "revoked"
    assert len(run("keys", "list", "--tenant", tenant, "--local")["keys"]) == 2


def test_local_defaults_to_the_repositorys_local_dir_from_any_directory(elsewhere: Path) -> None:
    root = cli.repository_root()
    assert root is not None and (root / "template.yaml").is_file() and elsewhere not in (root, *root.parents)
    assert cli._stack_file(cli._parser().parse_args(["tenants", "list", "--local"])) == root / ".local" / "stack.json"


def test_local_from_outside_the_repository_says_how_to_find_the_stack(
    elsewhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "__file__", str(elsewhere / "site-packages" / "chatsphere" / "cli.py"))
    assert cli.repository_root() is None
    assert "CHATSPHERE_LOCAL_DIR" in refused("keys", "list", "--tenant", "t1", "--local")


@pytest.mark.parametrize(
    "argv",
    [
        ("tenants", "list", "--local"),
        ("tenants", "create", "--name", "Acme", "--local"),
        ("keys", "create", "--tenant", "t1", "--local"),
        ("keys", "list", "--tenant", "t1", "--local"),
        ("keys", "revoke", "--tenant", "t1", "0123456789ab", "--local"),
        ("reconcile", "--local"),
        ("retention", "run", "--dry-run", "--local"),
    ],
)
def test_no_local_stack_running_is_said_in_one_line(
    elsewhere: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: tuple[str, ...]
) -> None:
    monkeypatch.setenv("CHATSPHERE_LOCAL_DIR", str(tmp_path))
    err = refused(*argv)  # no stack file
    assert "missing" in err and "make run" in err
    # a stack file left behind by a stack that is no longer running: nothing answers at its endpoint
    stack = {"aws_endpoint_url": "http://127.0.0.1:9", "resources": {"TenantsTable": "tenants"}}
    (tmp_path / "stack.json").write_text(json.dumps(stack))
    err = refused(*argv)
    assert "not running" in err and "make run" in err
