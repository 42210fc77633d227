"""Personal data at rest and in logs: sealed per subject, keyed hashes in keys, nothing in any log line."""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from datetime import UTC, datetime, timedelta
from typing import Any, TypedDict

import boto3
import pytest
from botocore.exceptions import ClientError

from infra import template
from tests.integration.helpers import (
    Reply,
    authorize,
    call,
    interaction_items,
    new_tenant,
    scan,
    stored_bytes,
)
from tests.integration.queues import drain, sequence

SUBJECT = "cust-0042"


class Person(TypedDict):
    name: str
    email: str
    phone: str
    contact: dict[str, str]


PERSON: Person = {
    "name": "Zelda Quintessa Marchbanks",
    "email": "Zelda.Quintessa@EXAMPLE.org",
    "phone": "+12015550123",
    "contact": {"telegram": "@zq_marchbanks_7731", "skype": "quintessa.skype.5521"},
}
SHORT_TEXT = "Hello, this is Zelda: parcel zq-inline-4417 never came to 12 Larkspur Row"
LONG_TEXT = "My complaint zq-bucket-9923, written at length by Zelda Quintessa. " * 600  # about 40 KiB: the bucket

# Every form in which a personal value could leak: as sent, normalised, case-folded, and the pieces.
PERSONAL = [
    "Zelda Quintessa Marchbanks",
    "Marchbanks",
    "Quintessa",
    "Zelda.Quintessa@example.org",
    "zelda.quintessa@example.org",
    "2015550123",
    "zq_marchbanks_7731",
    "quintessa.skype.5521",
    "zq-inline-4417",
    "Larkspur",
    "zq-bucket-9923",
]


def variants(value: str) -> set[bytes]:
    forms = {value, value.lower(), value.upper(), json.dumps(value)[1:-1]}
    return {f.encode() for f in forms}


def leaks(blob: bytes, values: list[str]) -> list[str]:
    lowered = blob.lower()
    return [v for v in values if any(form.lower() in lowered for form in variants(v))]


@pytest.fixture
def acme(aws: Any) -> tuple[str, str]:
    return new_tenant("Acme")


def store_everything(tenant: str) -> dict[str, str]:
    """A subject with every field and three interactions: inline, in the bucket, and an idempotent retry."""
    assert call("PUT", f"/v1/subjects/{SUBJECT}", tenant=tenant, body=PERSON).status == 201
    ids = {}
    for name, text, headers in [
        ("short", SHORT_TEXT, None),
        ("long", LONG_TEXT, {"Idempotency-Key": "upload-1"}),
        ("long-retry", LONG_TEXT, {"Idempotency-Key": "upload-1"}),
    ]:
        body = {"conversation_id": "conv-1", "role": "customer", "text": text, "channel": "email"}
        r = call("POST", f"/v1/subjects/{SUBJECT}/interactions", tenant=tenant, body=body, headers=headers)
        assert r.status == 201, r.body
        ids[name] = r.body["interaction_id"]
    return ids


# ------------------------------------------------------------------ at rest
def test_no_personal_value_is_stored_in_any_item_or_object_version(acme: tuple[str, str], aws: Any) -> None:
    # Given a subject with every field, short and long interactions, and a replaced profile (an older S3/DB state)
    tenant, api_key = acme
    store_everything(tenant)
    replaced = {**PERSON, "name": "Zelda Q. Marchbanks-Oldname"}
    assert call("PUT", f"/v1/subjects/{SUBJECT}", tenant=tenant, body=replaced).status == 200
    assert call("PUT", f"/v1/subjects/{SUBJECT}", tenant=tenant, body=PERSON).status == 200
    assert call("POST", "/v1/subject-lookups", tenant=tenant, body={"email": PERSON["email"]}).status == 200
    # and the evidence ledger holds every one of those actions' entries, a hold and an export, sequenced and signed
    hold = {"reason": "Case 12", "categories": ["interactions"]}
    assert call("PUT", f"/v1/subjects/{SUBJECT}/legal-hold", tenant=tenant, body=hold).status in (200, 201)
    assert call("POST", f"/v1/subjects/{SUBJECT}/exports", tenant=tenant, body={}).status == 202
    drain(aws, "ExportQueue")
    sequence(aws)
    from chatsphere.bootstrap import wiring
    from chatsphere.logic import ledger

    ledger.sign(wiring().ledger, tenant, "2026-12-01T00:00:00.000000Z")
    # When we read every item of every table and every version of every object, keys included
    stored = stored_bytes()
    assert any(where.startswith("s3://") for where, _ in stored), "the long text should be in the bucket"
    assert any("/ledger/entries/" in where for where, _ in stored), "the ledger's entries should be in its bucket"
    assert any("/ledger/heads/" in where for where, _ in stored), "a signed head should be in the ledger's bucket"
    # Then no personal value and no API key appears anywhere, in any case
    secret = api_key.split(".", 1)[1]
    for where, blob in stored:
        assert leaks(blob, [*PERSONAL, "Oldname", api_key, secret]) == [], where
    # while the API still reads all of it back
    got = call("GET", f"/v1/subjects/{SUBJECT}", tenant=tenant).body
    assert (got["name"], got["email"], got["contact"]) == (
        PERSON["name"],
        "Zelda.Quintessa@example.org",
        PERSON["contact"],
    )
    texts = sorted(i["text"] for i in call("GET", f"/v1/subjects/{SUBJECT}/interactions", tenant=tenant).body["items"])
    assert texts == sorted([SHORT_TEXT, LONG_TEXT])


def test_lookup_index_keys_hold_a_keyed_hash_not_the_identifier(acme: tuple[str, str], aws: Any) -> None:
    from chatsphere.bootstrap import wiring
    from chatsphere.logic.crypto import keyed_digest

    tenant, _ = acme
    assert call("PUT", f"/v1/subjects/{SUBJECT}", tenant=tenant, body=PERSON).status == 201
    index_items = [i for i in scan(aws.refs["SubjectsTable"]) if "ipk" in i]
    by_kind = {i["ipk"]["S"].split("#")[2]: i["ipk"]["S"] for i in index_items}
    assert set(by_kind) == {"email", "phone"}
    identifiers = {"email": "zelda.quintessa@example.org", "phone": "+12015550123"}
    for kind, ipk in by_kind.items():
        prefix, digest = ipk.rsplit("#", 1)
        assert prefix == f"T#{tenant}#{kind}"
        # the tenant's own keyed hash of the normalised identifier...
        assert digest == keyed_digest(wiring().adapters.secret(tenant), kind, identifiers[kind])
        # ...which nobody without the tenant's secret can compute from a guessed identifier
        for guess in (identifiers[kind], f"{kind}:{identifiers[kind]}", PERSON["email"]):
            assert digest not in (hashlib.sha256(guess.encode()).hexdigest(), hashlib.md5(guess.encode()).hexdigest())  # noqa: S324
        assert leaks(ipk.encode(), PERSONAL) == []


def test_the_same_identifier_hashes_differently_for_each_tenant(acme: tuple[str, str], aws: Any) -> None:
    globex, _ = new_tenant("Globex")
    for tenant in (acme[0], globex):
        assert call("PUT", f"/v1/subjects/{SUBJECT}", tenant=tenant, body={"email": PERSON["email"]}).status == 201
    digests = {i["ipk"]["S"].rsplit("#", 1)[1] for i in scan(aws.refs["SubjectsTable"]) if "ipk" in i}
    assert len(digests) == 2


def test_each_subject_has_its_own_wrapped_data_key(acme: tuple[str, str], aws: Any) -> None:
    tenant, _ = acme
    for subject in ("cust-1", "cust-2"):
        assert call("PUT", f"/v1/subjects/{subject}", tenant=tenant, body={"name": "Zelda"}).status == 201
    rows = {r["pk"]["S"]: r["wrapped_key"]["B"] for r in scan(aws.refs["SubjectKeysTable"])}
    assert set(rows) == {f"T#{tenant}#S#cust-1", f"T#{tenant}#S#cust-2"}
    kms = boto3.client("kms")
    context = {"tenant_id": tenant, "purpose": "subject-data-key"}
    keys = [kms.decrypt(CiphertextBlob=w, EncryptionContext=context)["Plaintext"] for w in rows.values()]
    assert len(set(keys)) == 2
    assert all(len(k) == 32 for k in keys)
    assert all(k not in w for k, w in zip(keys, rows.values(), strict=True))


def _update_profile_field(aws: Any, tenant: str, subject: str, field: str, value: bytes) -> None:
    boto3.client("dynamodb").update_item(
        TableName=aws.refs["SubjectsTable"],
        Key={"pk": {"S": f"T#{tenant}#S#{subject}"}, "sk": {"S": "PROFILE"}},
        UpdateExpression="SET sealed.#f = :v",
        ExpressionAttributeNames={"#f": field},
        ExpressionAttributeValues={":v": {"B": value}},
    )


def _profile(aws: Any, tenant: str, subject: str) -> dict[str, Any]:
    (item,) = [
        i
        for i in scan(aws.refs["SubjectsTable"])
        if i["pk"]["S"] == f"T#{tenant}#S#{subject}" and i["sk"]["S"] == "PROFILE"
    ]
    return item


def assert_refused_without_leaking(r: Reply, *values: str) -> None:
    """A ciphertext that does not open is a backend fault: a plain 500, never the value it held."""
    assert r.status == 500, (r.status, r.body)
    assert r.headers["content-type"].startswith("application/problem+json")
    assert leaks(r.text.encode(), list(values)) == []


def test_a_field_ciphertext_moved_to_another_field_does_not_open(acme: tuple[str, str], aws: Any) -> None:
    # Given a subject, whose sealed e-mail is copied over its sealed name (same subject, same data key)
    tenant, _ = acme
    assert call("PUT", f"/v1/subjects/{SUBJECT}", tenant=tenant, body=PERSON).status == 201
    sealed_email = _profile(aws, tenant, SUBJECT)["sealed"]["M"]["email"]["B"]
    _update_profile_field(aws, tenant, SUBJECT, "name", sealed_email)
    # When the tenant reads the subject
    r = call("GET", f"/v1/subjects/{SUBJECT}", tenant=tenant)
    # Then the e-mail does not come back as the name
    assert_refused_without_leaking(r, "zelda.quintessa@example.org")


def test_a_ciphertext_copied_to_another_subject_does_not_open(acme: tuple[str, str], aws: Any) -> None:
    # Given two subjects of one tenant, and cust-1's sealed name copied into cust-2's profile
    tenant, _ = acme
    assert call("PUT", "/v1/subjects/cust-1", tenant=tenant, body={"name": "Zelda Quintessa Marchbanks"}).status == 201
    assert call("PUT", "/v1/subjects/cust-2", tenant=tenant, body={"name": "Somebody Else"}).status == 201
    _update_profile_field(aws, tenant, "cust-2", "name", _profile(aws, tenant, "cust-1")["sealed"]["M"]["name"]["B"])
    # Then reading cust-2 does not show cust-1's name
    assert_refused_without_leaking(call("GET", "/v1/subjects/cust-2", tenant=tenant), "Marchbanks")
    # and cust-1 is unaffected
    assert call("GET", "/v1/subjects/cust-1", tenant=tenant).body["name"] == "Zelda Quintessa Marchbanks"


def test_interaction_text_copied_to_another_interaction_does_not_open(acme: tuple[str, str], aws: Any) -> None:
    # Given two inline interactions of one subject, the first one's sealed text copied over the second's
    tenant, _ = acme
    assert call("PUT", f"/v1/subjects/{SUBJECT}", tenant=tenant, body={}).status == 201
    for text in (SHORT_TEXT, "an innocuous second message"):
        body = {"conversation_id": "c", "role": "customer", "text": text}
        assert call("POST", f"/v1/subjects/{SUBJECT}/interactions", tenant=tenant, body=body).status == 201
    items = interaction_items(aws.refs["SubjectsTable"])
    source = next(i for i in items if i["text_bytes"]["N"] == str(len(SHORT_TEXT.encode())))
    target = next(i for i in items if i is not source)
    boto3.client("dynamodb").update_item(
        TableName=aws.refs["SubjectsTable"],
        Key={"pk": target["pk"], "sk": target["sk"]},
        UpdateExpression="SET text_sealed = :v",
        ExpressionAttributeValues={":v": source["text_sealed"]},
    )
    # Then the list does not show the first message's text under the second's id
    r = call("GET", f"/v1/subjects/{SUBJECT}/interactions", tenant=tenant)
    assert_refused_without_leaking(r, "zq-inline-4417")


def test_a_bucket_object_copied_to_another_interaction_does_not_open(acme: tuple[str, str], aws: Any) -> None:
    tenant, _ = acme
    assert call("PUT", f"/v1/subjects/{SUBJECT}", tenant=tenant, body={}).status == 201
    body = {"conversation_id": "c", "role": "customer", "text": LONG_TEXT}
    ids = [
        call("POST", f"/v1/subjects/{SUBJECT}/interactions", tenant=tenant, body=body).body["interaction_id"]
        for _ in range(2)
    ]
    s3, bucket = boto3.client("s3"), aws.refs["DataBucket"]
    keys = {i: f"tenants/{tenant}/subjects/{SUBJECT}/interactions/{i}" for i in ids}
    first = s3.get_object(Bucket=bucket, Key=keys[ids[0]])["Body"].read()
    s3.put_object(Bucket=bucket, Key=keys[ids[1]], Body=first)
    assert_refused_without_leaking(call("GET", f"/v1/subjects/{SUBJECT}/interactions", tenant=tenant), "zq-bucket-9923")


def test_deleting_a_subjects_key_row_makes_its_data_unreadable(acme: tuple[str, str], aws: Any) -> None:
    # Given a subject with inline and bucket interactions
    tenant, _ = acme
    store_everything(tenant)
    # When its data key row is deleted (crypto-shredding)
    boto3.client("dynamodb").delete_item(
        TableName=aws.refs["SubjectKeysTable"], Key={"pk": {"S": f"T#{tenant}#S#{SUBJECT}"}}
    )
    # Then the subject is gone for every read and write of the API, though its sealed rows remain
    assert call("GET", f"/v1/subjects/{SUBJECT}", tenant=tenant).status == 404
    assert call("GET", f"/v1/subjects/{SUBJECT}/interactions", tenant=tenant).status == 404
    body = {"conversation_id": "c", "role": "customer", "text": "after the erasure"}
    assert call("POST", f"/v1/subjects/{SUBJECT}/interactions", tenant=tenant, body=body).status == 404
    assert interaction_items(aws.refs["SubjectsTable"])


def test_a_wrapped_key_does_not_unwrap_for_another_tenant(acme: tuple[str, str], aws: Any) -> None:
    tenant, _ = acme
    other, _ = new_tenant("Globex")
    assert call("PUT", f"/v1/subjects/{SUBJECT}", tenant=tenant, body={"name": "Zelda"}).status == 201
    (row,) = scan(aws.refs["SubjectKeysTable"])
    with pytest.raises(ClientError):
        boto3.client("kms").decrypt(
            CiphertextBlob=row["wrapped_key"]["B"],
            EncryptionContext={"tenant_id": other, "purpose": "subject-data-key"},
        )


# ------------------------------------------------------------------ in logs
def test_no_log_line_holds_a_personal_value_or_key_and_each_carries_a_correlation_id(
    acme: tuple[str, str],
    aws: Any,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import chatsphere.handlers.authorizer
    import chatsphere.handlers.intake  # noqa: F401  (import-time lines are not part of a request)
    from chatsphere.dal.subjects import DynamoSubjectStore
    from chatsphere.observability import logger

    tenant, api_key = acme
    # Everything at DEBUG, as the dev stage runs (template.yaml: POWERTOOLS_LOG_LEVEL DEBUG unless prod)
    caplog.set_level(logging.DEBUG)
    previous = logger.log_level
    logger.setLevel(logging.DEBUG)
    capsys.readouterr()
    # The logger's handler keeps the stdout of the test that first imported it; point it at this test's.
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    original_stream = handler.setStream(sys.stdout)
    seen: list[tuple[str, str, list[dict[str, Any]]]] = []  # (step, expected correlation id, log lines)
    raw_output: list[str] = []

    def step(name: str, reply: Reply | None = None) -> Reply | None:
        out = capsys.readouterr()
        raw_output.extend([out.out, out.err])
        lines = [json.loads(line) for line in out.out.splitlines() if line.startswith("{")]
        seen.append((name, reply.request_id if reply else "", [line for line in lines if "level" in line]))
        return reply

    def with_key(name: str, method: str, path: str, **kwargs: Any) -> Reply | None:
        answer = authorize(f"Bearer {api_key}", method, path)
        step("authorizer")
        context = {**answer["context"], "principalId": answer["principalId"]}
        return step(name, call(method, path, tenant=None, authorizer=context, **kwargs))

    try:
        # a full intake flow, through the authorizer
        authorize(f"Bearer {api_key}")
        step("authorize")
        with_key("put", "PUT", f"/v1/subjects/{SUBJECT}", body=PERSON)
        for n, text in enumerate((SHORT_TEXT, LONG_TEXT)):
            body = {"conversation_id": "conv-1", "role": "customer", "text": text}
            path = f"/v1/subjects/{SUBJECT}/interactions"
            with_key("post", "POST", path, body=body, headers={"Idempotency-Key": f"k-{n}"})
        with_key("get", "GET", f"/v1/subjects/{SUBJECT}")
        with_key("list", "GET", f"/v1/subjects/{SUBJECT}/interactions")
        with_key("lookup-email", "POST", "/v1/subject-lookups", body={"email": PERSON["email"]})
        with_key("lookup-phone", "POST", "/v1/subject-lookups", body={"phone": PERSON["phone"]})
        # requests that fail, each carrying personal values
        bad_email = {**PERSON, "email": "Zelda.Quintessa-at-example.org"}
        step("invalid-email", call("PUT", f"/v1/subjects/{SUBJECT}", tenant=tenant, body=bad_email))
        step(
            "unknown-field",
            call("PUT", f"/v1/subjects/{SUBJECT}", tenant=tenant, body={**PERSON, "maiden_name": "Marchbanks"}),
        )
        step(
            "malformed",
            call("PUT", f"/v1/subjects/{SUBJECT}", tenant=tenant, raw_body='{"name": "Zelda Quintessa Marchbanks"'),
        )
        too_long = {"conversation_id": "c", "role": "customer", "text": "zq-bucket-9923 " * 75_000}
        step("too-large", call("POST", f"/v1/subjects/{SUBJECT}/interactions", tenant=tenant, body=too_long))
        step(
            "not-found",
            call(
                "POST",
                "/v1/subjects/nobody/interactions",
                tenant=tenant,
                body={"conversation_id": "c", "role": "bot", "text": SHORT_TEXT},
            ),
        )
        authorize(f"Bearer cs_{tenant}.{'A' * 43}")
        step("denied")
        authorize(f"Bearer {api_key[:-2]}xx")
        step("denied-forged")

        # a backend failure whose message quotes personal data
        def broken(*_: Any, **__: Any) -> None:
            raise ClientError(
                {"Error": {"Code": "InternalServerError", "Message": f"pk with {PERSON['email']}"}}, "GetItem"
            )

        with monkeypatch.context() as patch:
            patch.setattr(DynamoSubjectStore, "get_profile", broken)
            failed = step("backend-failure", call("GET", f"/v1/subjects/{SUBJECT}", tenant=tenant))

        # retention (anonymize: the day's aggregate first) and analytics over the subject's interactions
        from tests.integration.helpers import functions
        from tests.integration.queues import drain

        read = step("settings-read", call("GET", "/v1/settings", tenant=tenant))
        assert read is not None
        settings = read.body
        settings["retention"]["interactions"] = {"days": 1, "action": "anonymize"}
        settings["analytics_min_count"] = 2
        step("settings", call("PUT", "/v1/settings", tenant=tenant, body=settings))
        later = (datetime.now(UTC) + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        functions().invoke("RetentionFunction", {"as_of": later})
        drain(aws, "RetentionQueue")
        step("retention")
        functions().invoke("AnalyticsFunction", {"as_of": later})
        step("analytics")
        today = datetime.now(UTC).date().isoformat()
        daily = step("daily", call("GET", "/v1/analytics/daily", tenant=tenant, query=f"from={today}&to={today}"))
        assert daily is not None and daily.status == 200 and daily.body["items"], daily
        raw_output.append(daily.text)
        step("runs", call("GET", "/v1/retention/runs", tenant=tenant))

        # the subject's erasure: the request, the job (and its SubjectDeleted event), and the 410s after it

        with_key("delete", "DELETE", f"/v1/subjects/{SUBJECT}")
        drain(aws, "DeletionQueue")
        step("deletion-job")
        with_key("gone", "GET", f"/v1/subjects/{SUBJECT}")
        body = {"conversation_id": "conv-1", "role": "customer", "text": SHORT_TEXT}
        step("replay", call("POST", f"/v1/subjects/{SUBJECT}/interactions", tenant=tenant, body=body))
    finally:
        logger.setLevel(previous)
        handler.setStream(original_stream)
    assert failed is not None
    assert failed.status == 500

    # Then nothing that was logged, printed or captured holds a personal value or the API key
    everything = "\n".join(raw_output) + "\n" + caplog.text + "\n".join(repr(vars(r)) for r in caplog.records)
    secret = api_key.split(".", 1)[1]
    assert leaks(everything.encode(), [*PERSONAL, api_key, secret, "Larkspur"]) == []
    # and every log line of an API request carries that request's correlation id
    api_lines = 0
    for name, request_id, lines in seen:
        for line in lines:
            if request_id:
                assert line.get("correlation_id") == request_id, (name, line)
                api_lines += 1
            else:  # the TOKEN authorizer's event has no request id; Lambda's own id stands in
                assert line.get("function_request_id"), (name, line)
    assert api_lines >= 1, "the failing request must log at least one line to correlate"


def test_no_function_turns_on_powertools_package_debug_logging() -> None:
    # POWERTOOLS_DEBUG makes Powertools log each route's arguments, request bodies included.
    for fn in template.functions().values():
        assert "POWERTOOLS_DEBUG" not in fn.environment, fn.logical_id
        assert "POWERTOOLS_DEV" not in fn.environment, fn.logical_id
        assert str(fn.environment.get("POWERTOOLS_LOGGER_LOG_EVENT", "false")).lower() == "false", fn.logical_id
