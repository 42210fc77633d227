"""The residue scanner (tests/residue.py) is only worth its silence if it finds what is there: each test here
plants or produces a value somewhere an erasure could miss it, and checks the scanner reports that place."""

from __future__ import annotations

import io
import zipfile
from typing import Any
from urllib.parse import quote

import boto3
import pytest

from tests.integration.helpers import call, new_tenant
from tests.residue import Finding, SubjectValues, assert_no_residue, encodings, kinds, residue

LONG = 40_000  # over the inline limit: the text goes to the bucket

PERSON: dict[str, Any] = {
    "name": "Renée O'Whitcombe",
    "email": "Renee.Whitcombe@Bücher.example",
    "phone": "+14155550142",
    "contact": {"telegram": "@rw_hollyhock_5521"},
}
TEXTS = [
    'She wrote "café crème" at Hollyhock Lane 12',  # a quote and non-ASCII: JSON- and CSV-escaped in a package
    "parcel rw-4471 never came",
    "=HYPERLINK(rw-formula-9920)",  # a formula start: the CSV cell gets a leading apostrophe
    "long complaint rw-bucket-8810 " + "x" * LONG,
]


def put_subject(tenant: str, sid: str, body: dict[str, Any], texts: list[str]) -> None:
    assert call("PUT", f"/v1/subjects/{sid}", tenant=tenant, body=body).status == 201
    for text in texts:
        reply = call(
            "POST",
            f"/v1/subjects/{sid}/interactions",
            tenant=tenant,
            body={"conversation_id": "c-1", "role": "customer", "text": text},
        )
        assert reply.status == 201, reply.body


def places(findings: list[Finding], kind: str) -> list[str]:
    return sorted(f.where for f in findings if f.what == kind)


def assert_nothing_personal_in(findings: list[Finding], values: SubjectValues) -> None:
    """The report is safe to print: no personal value, in any of its encodings, in any case."""
    report = (str(findings) + "\n".join(map(str, findings))).lower()
    for kind, value in values.labelled():
        for form, text in encodings(kind, value).items():
            assert text.lower() not in report, (kind, form)


# ------------------------------------------------------------------ what the stack stores
def test_a_stored_subject_leaves_its_id_in_keys_and_nothing_readable(aws: Any) -> None:
    # Given a subject stored normally: profile, lookup items, short interactions and one in the bucket
    tenant, _ = new_tenant()
    put_subject(tenant, "u-1", PERSON, TEXTS)
    values = SubjectValues.from_profile("u-1", PERSON, TEXTS)
    # When the whole stack is scanned (and every table and bucket of template.yaml was among what it read)
    findings = residue(values, resolver=aws)
    # Then the id is found, in the keys: the subject's partition, its data key, the lookup index, the bucket
    assert kinds(findings) == {"subject_id"}
    where = places(findings, "subject_id")
    assert any(w.startswith("table SubjectsTable item T#") and " attr pk" in w for w in where), where
    assert any(w.startswith("table SubjectKeysTable ") for w in where), where
    assert any(w.startswith("index SubjectsTable/IdentifierIndex ") and w.endswith("attr subject_id") for w in where)
    assert any(w.startswith(f"s3://{aws.refs['DataBucket']}/tenants/{tenant}/subjects/<subject_id>/") for w in where)
    # but no name, email, phone, contact or text: those are sealed at rest
    assert_nothing_personal_in(findings, values)


def test_an_export_package_is_opened_and_every_value_found_in_it(aws: Any) -> None:
    # Given a subject whose export was built in both formats
    from tests.integration.queues import drain

    tenant, _ = new_tenant()
    put_subject(tenant, "u-1", PERSON, TEXTS)
    for fmt in ("json", "csv"):
        assert call("POST", "/v1/subjects/u-1/exports", tenant=tenant, body={"format": fmt}).status == 202
    drain(aws, "ExportQueue")
    values = SubjectValues.from_profile("u-1", PERSON, TEXTS)
    # When the stack is scanned
    findings = residue(values)
    by_member: dict[str, dict[str, str]] = {}
    for f in findings:
        if "[member " in f.where:
            by_member.setdefault(f.where.rsplit("[member ", 1)[1].rstrip("]"), {})[f.what] = f.form
    # Then the zips were opened, and every value is found inside, in the encoding each file writes it in
    assert set(by_member) >= {"subject.json", "interactions.jsonl", "interactions.csv"}, sorted(by_member)
    subject_json = by_member["subject.json"]  # json.dumps: non-ASCII as \uXXXX
    assert subject_json == {
        "subject_id": "as given",
        "name": "json",
        "email": "json",
        "phone": "as given",
        "contact.telegram": "as given",
    }
    jsonl = by_member["interactions.jsonl"]  # pydantic: a quote escaped, non-ASCII kept
    assert jsonl["text[0]"] == "json (non-ASCII kept)"
    assert {k: v for k, v in jsonl.items() if k != "text[0]"} == {f"text[{i}]": "as given" for i in (1, 2, 3)}
    csv = by_member["interactions.csv"]  # quotes doubled, formula starts behind an apostrophe
    assert csv == {"text[0]": "csv", "text[1]": "as given", "text[2]": "as given", "text[3]": "as given"}
    # and the package's own key names the subject
    assert any("/exports/" in w and "(key)" in w for w in places(findings, "subject_id"))
    # The report names places and kinds, never a value
    assert_nothing_personal_in(findings, values)
    with pytest.raises(AssertionError, match=r"residue finding\(s\)") as failed:
        assert_no_residue(values)
    assert "text[0] (csv) at s3://" in str(failed.value)
    assert PERSON["name"].lower() not in str(failed.value).lower()


# ------------------------------------------------------------------ planted by hand, where an erasure could miss it
NAME, EMAIL, PHONE = "Ottoline Brackenbury", "otto.b@example.org", "+442071838750"
PLANTED = SubjectValues(
    subject_id="p-7",
    name=NAME,
    email=EMAIL,
    phone=PHONE,
    contact={"skype": "ottoline.skype.3317"},
    texts=["the gazebo code is 5531-hawthorn", 'She said "née Brackenbury" twice'],
)


def zipped(**members: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out.getvalue()


def test_values_planted_by_hand_are_each_found(aws: Any) -> None:
    ddb, s3 = boto3.client("dynamodb"), boto3.client("s3")
    data, logs = aws.refs["DataBucket"], aws.refs["AccessLogBucket"]
    # Given values planted where a careless erasure would leave them:
    # deep in a map in a list in a map,
    nested = {"M": {"audit": {"L": [{"M": {"note": {"S": f"called by {NAME}"}}}]}}}
    ddb.put_item(TableName=aws.refs["TenantsTable"], Item={"pk": {"S": "T#x"}, "sk": {"S": "N#1"}, "extra": nested})
    # in a binary attribute, among bytes that are not text,
    blob = b"\xff\xfe\x00" + EMAIL.encode() + b"\x80\x81"
    ddb.put_item(TableName=aws.refs["TenantsTable"], Item={"pk": {"S": "T#x"}, "sk": {"S": "N#2"}, "raw": {"B": blob}})
    # in an attribute the OpenRequestsIndex projects (ALL) and one the IdentifierIndex projects (INCLUDE),
    request = {"pk": {"S": "T#x"}, "sk": {"S": "R#1"}, "open_pk": {"S": "T#x"}, "due_at": {"S": "2030-01-01"}}
    ddb.put_item(TableName=aws.refs["RequestsTable"], Item={**request, "note": {"S": PLANTED.contact["skype"]}})
    lookup = {"pk": {"S": "T#x#S#q"}, "sk": {"S": "L#phone"}, "ipk": {"S": "T#x#phone#00"}}
    ddb.put_item(TableName=aws.refs["SubjectsTable"], Item={**lookup, "subject_id": {"S": PHONE}})
    # in an object's metadata (URL-encoded) and its tags,
    s3.put_object(Bucket=data, Key="misc/a", Body=b"-", Metadata={"owner": quote(NAME)})
    s3.put_object_tagging(Bucket=data, Key="misc/a", Tagging={"TagSet": [{"Key": "by", "Value": "otto.b@example.org"}]})
    # in an old version hidden behind a delete marker, under a key that names the subject,
    s3.put_object(Bucket=data, Key="tenants/x/subjects/p-7/old.txt", Body=PLANTED.texts[0].encode())
    s3.delete_object(Bucket=data, Key="tenants/x/subjects/p-7/old.txt")
    # and CSV-escaped in a zip inside a zip, in the other bucket
    inner = zipped(**{"deep/rows.csv": f'1,"{PLANTED.texts[1].replace(chr(34), chr(34) * 2)}"\r\n'.encode()})
    s3.put_object(Bucket=logs, Key="outer.zip", Body=zipped(**{"readme.txt": b"hello", "inner.zip": inner}))

    # When the stack is scanned
    findings = residue(PLANTED)
    found = {(f.what, f.where) for f in findings}

    # Then each is found, at its place
    def at(kind: str, *, start: str = "", end: str = "", has: str = "") -> None:
        matches = [w for k, w in found if k == kind and w.startswith(start) and w.endswith(end) and has in w]
        assert matches, (kind, start, end, has, sorted(found))

    at("name", start="table TenantsTable item T#x/N#1 attr extra.audit[0].note")
    at("email", start="table TenantsTable item T#x/N#2 attr raw")
    at("contact.skype", start="index RequestsTable/OpenRequestsIndex item T#x/R#1 attr note")
    at("phone", start="index SubjectsTable/IdentifierIndex item T#x#S#q/L#phone attr subject_id")
    at("name", start=f"s3://{data}/misc/a?versionId=", end="(metadata owner)")
    at("email", start=f"s3://{data}/misc/a?versionId=", end="(tag by)")
    at("text[0]", start=f"s3://{data}/tenants/x/subjects/<subject_id>/old.txt?versionId=")
    at("subject_id", start=f"s3://{data}/tenants/x/subjects/<subject_id>/old.txt?versionId=", end="(delete marker key)")
    at("text[1]", start=f"s3://{logs}/outer.zip?versionId=", end="[member inner.zip > deep/rows.csv]")
    assert {f.form for f in findings if f.what == "text[1]"} == {"csv"}
    assert {f.form for f in findings if f.what == "name" and "metadata" in f.where} == {"url"}
    # an INCLUDE index holds only what it projects: the Tenants' map is not in any index, the key attrs are
    assert not [w for k, w in found if w.startswith("index ") and "N#1" in w]
    assert_nothing_personal_in(findings, PLANTED)


# ------------------------------------------------------------------ no false positives
def test_another_subject_whose_id_extends_this_one_is_no_residue_of_it(aws: Any) -> None:
    # Given subject u-10, with its own values, a text in the bucket and an export package
    tenant, _ = new_tenant()
    other = {"name": "Bartholomew Quince", "email": "bq@example.net", "phone": "+14155550199"}
    put_subject(tenant, "u-10", other, ["hello from u-10 " + "y" * LONG])
    # When the stack is scanned for u-1 (nothing stored under that id)
    values = SubjectValues.from_profile("u-1", PERSON, TEXTS)
    # Then nothing is found: u-1 is no component of T#..#S#u-10 nor of tenants/../subjects/u-10/
    assert residue(values) == []
    assert_no_residue(values)
    # while u-10 itself is found, so the scan did read those keys
    assert kinds(residue(SubjectValues.from_profile("u-10", other, []))) == {"subject_id"}


def test_a_value_inside_an_allowed_string_is_no_residue(aws: Any) -> None:
    ddb = boto3.client("dynamodb")
    digest = "5f0e" + "ottolinebrackenbury" + "9ac1"  # a "hash" that happens to spell a value: left on purpose
    ddb.put_item(
        TableName=aws.refs["RequestsTable"],
        Item={"pk": {"S": "T#x"}, "sk": {"S": "R#9"}, "proof": {"S": f"T#x#name#{digest}"}},
    )
    values = SubjectValues("p-7", name="OttolineBrackenbury")
    assert kinds(residue(values)) == {"name"}  # found, when nothing is allowed
    assert residue(values, allowed={digest.upper()}) == []  # the allowed string is matched in any case
    assert_no_residue(values, allowed=[digest])


# ------------------------------------------------------------------ matching rules, no stack needed
@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("T#t1#S#u-1", True),
        ("tenants/t1/subjects/u-1/interactions/i-1", True),
        ("u-1", True),
        ('{"subject_id": "u-1"}', True),
        ("tenants%2Ft1%2Fsubjects%2Fu-1%2Fx", True),
        ("T#t1#S#u-10", False),
        ("tenants/t1/subjects/u-10/", False),
        ("T#t1#S#xu-1", False),
        ("T#t1#S#U-1", False),  # ids are case-sensitive
        ("u-1.5", False),
    ],
)
def test_the_subject_id_is_matched_only_as_a_whole_component(text: str, found: bool) -> None:
    from tests.residue import _Matcher

    assert (_Matcher(SubjectValues("u-1"), ()).in_text(text) != []) is found


def test_a_short_id_is_not_looked_for_in_random_bytes_but_values_are() -> None:
    from tests.residue import _Matcher

    matcher = _Matcher(SubjectValues("beef", email="Otto.B@Bücher.example"), ())
    assert matcher.in_text("deadbeefcafe0042") == []  # hex that contains the id
    assert matcher.in_bytes(b"\xff\x00beef\x00\xfe") == []  # 4 bytes occur in ciphertext by chance
    assert matcher.in_bytes(b"\xff\x00otto.b@xn--bcher-kva.example\xfe") == [("email", "lookup")]
    assert matcher.in_text('"otto.b@b\\u00fccher.example"') == [("email", "json")]
    assert matcher.in_text("OTTO.B%40B%C3%BCCHER.EXAMPLE") == [("email", "url")]
