"""`make run` end to end: what a developer does with the local stack, over HTTP and from the command line."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.events import rest_event, token_event
from infra.local.run import sam_env_vars
from tests.local_stack.conftest import ROOT, RunningStack, http, make_invoke, start_stack

pytestmark = pytest.mark.local_stack

ALICE = "e2e-alice"


def local_aws(stack: RunningStack, service: str) -> Any:
    """A boto3 client of the stack's moto, as the stack's own functions see it."""
    env = stack.state["aws_env"]
    session = boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )
    return session.client(service, endpoint_url=stack.state["aws_endpoint_url"])


def test_a_tenant_stores_a_subject_and_reads_its_interactions_back_in_full(stack: RunningStack) -> None:
    api, key = stack.api_url, stack.key(0)
    long_text = "Ünïcode and more. " * 2500  # over 32 KiB, so it goes to S3 rather than inline

    created = http("PUT", f"{api}/v1/subjects/{ALICE}", key=key, json_body={"name": "Alice", "email": "al@ex.com"})
    short = http(
        "POST",
        f"{api}/v1/subjects/{ALICE}/interactions",
        key=key,
        json_body={"conversation_id": "c-1", "role": "customer", "text": "Hello"},
    )
    long = http(
        "POST",
        f"{api}/v1/subjects/{ALICE}/interactions",
        key=key,
        json_body={"conversation_id": "c-1", "role": "agent", "text": long_text},
    )
    listed = http("GET", f"{api}/v1/subjects/{ALICE}/interactions", key=key)

    assert created.status == 201, created.body
    assert created.body["email"] == "al@ex.com"
    assert (short.status, long.status) == (201, 201), (short.body, long.body)
    assert len(long_text.encode()) > 32 * 1024
    assert listed.status == 200, listed.body
    assert [(i["role"], i["text"]) for i in listed.body["items"]] == [("customer", "Hello"), ("agent", long_text)]
    stored = local_aws(stack, "s3").list_objects_v2(
        Bucket=stack.state["resources"]["DataBucket"], Prefix=f"tenants/{stack.tenant_id(0)}/subjects/{ALICE}/"
    )
    assert stored["KeyCount"] == 1  # the long text, as ciphertext; the short one is inline


def test_lookup_by_email_finds_the_subject(stack: RunningStack) -> None:
    api, key = stack.api_url, stack.key(0)
    http("PUT", f"{api}/v1/subjects/e2e-bob", key=key, json_body={"email": "Bob@Example.com"})

    found = http("POST", f"{api}/v1/subject-lookups", key=key, json_body={"email": "bob@EXAMPLE.com"})

    assert found.status == 200, found.body
    assert found.body == {"subject_ids": ["e2e-bob"]}


def test_no_key_is_a_401_problem(stack: RunningStack) -> None:
    answer = http("GET", f"{stack.api_url}/v1/subjects/{ALICE}")

    assert answer.status == 401
    assert answer.content_type == "application/problem+json"
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert answer.body["status"] == 401


@pytest.mark.parametrize(
    "key",
    [
        "cs_t0000000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  # well-formed, unknown tenant
        "not-a-chatsphere-key",
    ],
)
def test_a_bad_key_is_a_403_problem(stack: RunningStack, key: str) -> None:
    answer = http("GET", f"{stack.api_url}/v1/subjects/{ALICE}", key=key)

    assert answer.status == 403
    assert answer.content_type == "application/problem+json"
    assert answer.body["status"] == 403


def test_a_real_tenants_key_with_a_wrong_secret_is_a_403(stack: RunningStack) -> None:
    forged = stack.key(0)[:-4] + ("AAAA" if not stack.key(0).endswith("AAAA") else "BBBB")

    assert http("GET", f"{stack.api_url}/v1/subjects/{ALICE}", key=forged).status == 403


def test_another_tenant_cannot_see_the_subject(stack: RunningStack) -> None:
    api = stack.api_url
    http("PUT", f"{api}/v1/subjects/e2e-carol", key=stack.key(0), json_body={"name": "Carol"})

    as_other = http("GET", f"{api}/v1/subjects/e2e-carol", key=stack.key(1))
    interactions = http("GET", f"{api}/v1/subjects/e2e-carol/interactions", key=stack.key(1))

    assert as_other.status == 404, as_other.body
    assert interactions.status == 404, interactions.body
    assert http("GET", f"{api}/v1/subjects/e2e-carol", key=stack.key(0)).status == 200


def test_a_body_that_is_not_utf8_is_a_400_not_a_failure(stack: RunningStack) -> None:
    answer = http(
        "PUT",
        f"{stack.api_url}/v1/subjects/e2e-dave",
        key=stack.key(0),
        data=b'{"name": "\xff\xfe"}',
        headers={"Content-Type": "application/json"},
    )

    assert answer.status == 400, answer.body
    assert answer.content_type == "application/problem+json"


def test_a_subject_id_with_an_at_sign_works_whether_the_client_encodes_it_or_not(stack: RunningStack) -> None:
    api, key = stack.api_url, stack.key(0)

    created = http("PUT", f"{api}/v1/subjects/gina%40shop:eu", key=key, json_body={"name": "Gina"})
    read = http("GET", f"{api}/v1/subjects/gina@shop%3Aeu", key=key)

    assert created.status == 201, created.body
    assert read.status == 200, read.body
    assert read.body["subject_id"] == "gina@shop:eu"


INTERACTION = {"conversation_id": "c-1", "role": "bot", "text": "x"}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/settings", {"extension_days": False}, "extension_days"),
        ("/v1/settings", {"deadline_days": "30"}, "deadline_days"),
        ("/v1/subjects/e2e-hank/interactions", {**INTERACTION, "occurred_at": 0}, "occurred_at"),
    ],
    ids=["false-for-an-integer", "text-for-an-integer", "a-number-for-a-date-time"],
)
def test_a_value_of_the_wrong_json_type_is_refused_not_coerced(
    stack: RunningStack, path: str, body: dict[str, Any], field: str
) -> None:
    http("PUT", f"{stack.api_url}/v1/subjects/e2e-hank", key=stack.key(0), json_body={"name": "Hank"})
    method = "PUT" if path == "/v1/settings" else "POST"

    answer = http(method, f"{stack.api_url}{path}", key=stack.key(0), json_body=body)

    assert answer.status == 422, answer.body
    assert [e["loc"][-1] for e in answer.body["errors"]] == [field]


def test_an_undeclared_method_is_a_405_with_allow(stack: RunningStack) -> None:
    answer = http("DELETE", f"{stack.api_url}/v1/subject-lookups", key=stack.key(0))

    assert answer.status == 405
    assert answer.headers["Allow"] == "POST"


def test_the_cli_creates_a_tenant_whose_key_works(stack: RunningStack) -> None:
    # From a directory whose .local/stack.json is this stack's, as `--local` expects.
    done = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "chatsphere"), "tenants", "create", "--name", "E2E Corp", "--local"],
        cwd=stack.home,
        env=stack.env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    answer = http("PUT", f"{stack.api_url}/v1/subjects/e2e-erin", key=created["api_key"], json_body={"name": "Erin"})
    assert answer.status == 201, answer.body
    assert http("GET", f"{stack.api_url}/v1/subjects/e2e-erin", key=stack.key(0)).status == 404


def invoke(stack: RunningStack, function: str, event: dict[str, Any], tmp_path: Path) -> Any:
    event_file = tmp_path / f"{function}.json"
    event_file.write_text(json.dumps(event))
    return make_invoke(stack, function, event_file)


def test_make_invoke_runs_a_function_on_an_event_file_against_the_stack(stack: RunningStack, tmp_path: Path) -> None:
    api, tenant = stack.api_url, stack.tenant_id(0)
    http("PUT", f"{api}/v1/subjects/e2e-frank", key=stack.key(0), json_body={"name": "Frank"})
    event = rest_event(
        "GET",
        "/v1/subjects/{subject_id}",
        "/v1/subjects/e2e-frank",
        path_parameters={"subject_id": "e2e-frank"},
        authorizer={"tenant_id": tenant, "principalId": tenant},
    )

    result = invoke(stack, "IntakeFunction", event, tmp_path)
    policy = invoke(stack, "AuthorizerFunction", token_event(f"Bearer {stack.key(0)}", "dev", "GET", "/v1/x"), tmp_path)

    assert result["statusCode"] == 200, result
    assert json.loads(result["body"])["name"] == "Frank"
    assert policy["context"] == {"tenant_id": tenant}
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Allow"


# Every route sample through `make invoke`'s runtime, in one process (one `make invoke` each would cost a start
# apiece): the function's environment and the stack's AWS from its state file, the event as the file stands.
INVOKE_SAMPLES = """
import contextlib, json, os, sys
from infra.local import Functions, FunctionSpec, stack_file, use_local_aws
stack = json.loads(stack_file().read_text())
use_local_aws(stack["aws_endpoint_url"], stack["aws_env"])
for name, logical_id in json.loads(sys.argv[1]):
    function = stack["functions"][logical_id]
    os.environ.update(function["environment"])
    spec = FunctionSpec(logical_id, function["handler"], function["memory_mb"], function["timeout_s"])
    event = json.loads(open(f"events/{name}.json").read())
    with contextlib.redirect_stdout(sys.stderr):  # the functions' logs, as make invoke sends them
        result = Functions({logical_id: spec}).invoke(logical_id, event)
    print(json.dumps([name, result["statusCode"], result["body"][:300]]), file=sys.__stdout__, flush=True)
"""


def test_after_the_readmes_commands_every_sample_answers_2xx(tmp_path: Path) -> None:
    """The README's "Using the API" block, run as printed (with its port) on a stack of its own (it erases u-1001,
    which the banner's test wants), then every route sample as `make invoke` sends it: the ones that end what other
    samples name (DeleteSubject, ConfirmOffboarding) last."""
    from infra import template

    running = start_stack(tmp_path)
    try:
        readme = (ROOT / "README.md").read_text()
        block = re.search(r"^## Using the API\n\n```sh\n(.*?)^```", readme, re.MULTILINE | re.DOTALL)
        assert block, "the README's 'Using the API' block changed shape"
        script = block.group(1).replace("localhost:3000", running.api_url.removeprefix("http://"))
        assert "curl -X DELETE" in script and running.key(0) in script
        done = subprocess.run(["bash", "-e", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr
        last = ("DeleteSubject", "ConfirmOffboarding")
        routes = sorted(template.routes(), key=lambda r: last.index(r.event) if r.event in last else -1)
        done = subprocess.run(
            [
                str(ROOT / ".venv" / "bin" / "python"),
                "-c",
                INVOKE_SAMPLES,
                json.dumps([[r.event, r.function] for r in routes]),
            ],
            cwd=ROOT,
            env=running.env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        answers = [json.loads(line) for line in done.stdout.splitlines()]
        assert [name for name, _, _ in answers] == [r.event for r in routes]
        assert [(name, body) for name, status, body in answers if not 200 <= status < 300] == []
    finally:
        running.interrupt()


def test_the_banners_curl_examples_work(stack: RunningStack) -> None:
    lines = [line.strip() for line in stack.log().splitlines()]
    export = next(line for line in lines if line.startswith("export KEY="))
    curls = [line for line in lines if line.startswith("curl ")]

    statuses, outputs = [], []
    for curl in curls:
        done = subprocess.run(
            ["bash", "-c", f"{export}; {curl} -w '\\n%{{http_code}}'"], capture_output=True, text=True, check=True
        )
        body, _, status = done.stdout.rpartition("\n")
        statuses.append(int(status))
        outputs.append(body)

    assert len(curls) == 4
    assert [s // 100 for s in statuses] == [2, 2, 2, 2], outputs
    assert "Where is my order?" in outputs[2]
    assert json.loads(outputs[3]) == {"subject_ids": ["u-1001"]}


def test_the_sam_env_file_matches_what_the_stack_gives_its_functions(stack: RunningStack) -> None:
    committed = json.loads((ROOT / "infra" / "env" / "local.json").read_text())

    expected = sam_env_vars(stack.state)

    assert committed == expected, (
        "infra/env/local.json is out of date: with `make run` up, run "
        "`.venv/bin/python -m infra.local.run --sam-env-vars > infra/env/local.json`"
    )


def test_the_key_alias_in_the_sam_env_file_works_for_envelope_encryption(stack: RunningStack) -> None:
    alias = json.loads((ROOT / "infra" / "env" / "local.json").read_text())["IntakeFunction"]["DATA_KEY_ID"]
    kms = local_aws(stack, "kms")
    context = {"tenant_id": "t1"}

    made = kms.generate_data_key(KeyId=alias, KeySpec="AES_256", EncryptionContext=context)
    back = kms.decrypt(KeyId=alias, CiphertextBlob=made["CiphertextBlob"], EncryptionContext=context)

    assert alias.startswith("alias/")
    assert back["Plaintext"] == made["Plaintext"]


def test_ctrl_c_stops_the_stack_cleanly_and_removes_only_its_state(tmp_path: Path) -> None:
    """A stack of its own, beside the shared one: two stacks with their own ports and state dirs coexist."""
    running = start_stack(tmp_path)
    keep = running.local_dir / "keep.txt"
    keep.write_text("not the stack's")
    port = int(re.sub(r".*:", "", running.api_url))
    assert http("GET", f"{running.api_url}/v1/subjects/x", key=running.key(0)).status == 404

    code = running.interrupt()

    log = running.log()
    # make re-raises the SIGINT it got on itself once its recipe is done; had the stack exited non-zero
    # or died of the signal, make would have said so ("make: *** [...] Error 1" / "Interrupt").
    assert code == -signal.SIGINT, log
    assert "make: ***" not in log, log
    assert "local stack stopped" in log, log
    assert "Traceback" not in log, log
    assert not (running.local_dir / "stack.json").exists()
    assert keep.read_text() == "not the stack's"
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
