"""The residue scanner: after an erasure, does any value of the data subject remain anywhere in the stack?

It reads everything, the way an auditor would, and trusts nothing the product says about where data lives:

- every DynamoDB table of the account (so every AWS::DynamoDB::Table of template.yaml, which `resolver=` checks),
  every item, and every global and local secondary index as well (Scan with IndexName), since an index holds
  its own copy of what it projects; every attribute, nested maps and lists walked, map keys included;
- every S3 bucket, every object version and every delete marker (ListObjectVersions): the key, the
  version's metadata and content headers, its tags, and its body; a body (or a binary attribute) that is a
  zip archive (PK\\x03\\x04) is opened and each member scanned, its name too, nested zips included; and the
  keys of incomplete multipart uploads.

A value counts as found in any of the encodings it could have been written in: as given, in any letter case,
JSON-escaped (ASCII or not), URL-encoded, CSV-escaped; an email also in its lookup form (local part lower-case
@ IDNA domain), a phone also as its E.164 digits. The subject id is matched only as a whole component (a key
part between `#` or `/`, a whole attribute value, a JSON or CSV string), case-sensitively, so "u-1" is not
found in "u-10" nor inside a random hex string.

Strings in `allowed` (the keyed hashes an erasure leaves on purpose) are cut out before matching, so what
lies inside them is not residue. Bytes that are not UTF-8 text (ciphertext) are searched only for values of
at least MIN_BINARY_NEEDLE bytes: a shorter one would turn up in random bytes by chance.

A Finding says where and what kind of value, never the value: the report is safe to print, and the places in
it (keys, member names) have every value of the subject replaced by its kind."""

from __future__ import annotations

import contextlib
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus

import boto3

ZIP_MAGIC = b"PK\x03\x04"
MIN_BINARY_NEEDLE = 6  # a 6-byte needle turns up by chance once in ~2**48 random bytes
MAX_ZIP_DEPTH = 8
ID_CHARS = r"A-Za-z0-9._:@\-"  # what a subject id may hold (models/common.ID_PATTERN): its component bounds


@dataclass(frozen=True)
class Finding:
    where: str  # "table T item pk/sk attr a.b", "index T/I item ...", "s3://bucket/key?versionId=v [member m]"
    what: str  # the kind of value: "email", "text[2]", "contact.telegram", "subject_id"; never the value
    form: str = ""  # the encoding it was found in: "as given", "json", "url", "csv", "lookup", "e164 digits"

    def __str__(self) -> str:
        return f"{self.what} ({self.form}) at {self.where}" if self.form else f"{self.what} at {self.where}"


@dataclass
class SubjectValues:
    """Every value of one data subject that an erasure must leave nowhere."""

    subject_id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    contact: dict[str, str] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)

    @classmethod
    def from_profile(cls, subject_id: str, body: dict[str, Any], texts: Iterable[str] = ()) -> SubjectValues:
        """From a PUT /v1/subjects body (or a GET reply) and the texts of the subject's interactions."""
        return cls(
            subject_id=subject_id,
            name=body.get("name"),
            email=body.get("email"),
            phone=body.get("phone"),
            contact=dict(body.get("contact") or {}),
            texts=list(texts),
        )

    def labelled(self) -> list[tuple[str, str]]:
        """(kind, value) for each personal value; the subject id is matched apart (as a whole component)."""
        out = [(kind, v) for kind, v in (("name", self.name), ("email", self.email), ("phone", self.phone)) if v]
        out += [(f"contact.{key}", v) for key, v in sorted(self.contact.items()) if v]
        out += [(f"text[{i}]", t) for i, t in enumerate(self.texts) if t]
        return out


# ----------------------------------------------------------------------------------------------- encodings
def _idna(domain: str) -> set[str]:
    forms: set[str] = set()
    with contextlib.suppress(Exception):  # a domain that has no IDNA form has no such spelling to find
        import idna  # IDNA 2008 with UTS 46, as email_validator does

        forms.add(idna.encode(domain, uts46=True).decode("ascii"))
    with contextlib.suppress(UnicodeError):
        forms.add(domain.encode("idna").decode("ascii"))  # IDNA 2003: ß and some others differ
    return forms


def encodings(kind: str, value: str) -> dict[str, str]:
    """form -> the value written that way (each matched in any letter case)."""
    forms = {
        "as given": value,
        "json": json.dumps(value)[1:-1],
        "json (non-ASCII kept)": json.dumps(value, ensure_ascii=False)[1:-1],
        "json (slash escaped)": json.dumps(value)[1:-1].replace("/", "\\/"),
        "url": quote(value),
        "url (no safe chars)": quote(value, safe=""),
        "url (form)": quote_plus(value),
        "csv": value.replace('"', '""'),
    }
    if kind == "email" and "@" in value:
        local, _, domain = value.rpartition("@")
        for i, ascii_domain in enumerate(sorted(_idna(domain))):
            forms[f"lookup{'' if i == 0 else f' {i + 1}'}"] = f"{local.lower()}@{ascii_domain}"
    if kind == "phone":
        digits = re.sub(r"\D", "", value)
        if digits:
            forms["e164 digits"] = digits
    out: dict[str, str] = {}
    for form, text in forms.items():  # one name per distinct spelling, the first (plainest) one
        if text and text.lower() not in {t.lower() for t in out.values()}:
            out[form] = text
    return out


@dataclass
class _Needle:
    kind: str
    form: str
    text: str  # lower-cased, for text haystacks
    raw: bytes  # lower-cased UTF-8, for binary haystacks


class _Matcher:
    def __init__(self, values: SubjectValues, allowed: Iterable[str]) -> None:
        self.needles = [
            _Needle(kind, form, text.lower(), text.lower().encode("utf-8", "surrogatepass"))
            for kind, value in values.labelled()
            for form, text in encodings(kind, value).items()
        ]
        self.allowed = sorted({a.lower() for a in allowed if a}, key=len, reverse=True)
        self.allowed_raw = [a.encode("utf-8", "surrogatepass") for a in self.allowed]
        sid = values.subject_id
        id_forms = {"as given": sid, "url": quote(sid, safe=""), "json": json.dumps(sid)[1:-1]}
        id_forms = {form: text for form, text in id_forms.items() if form == "as given" or text != sid}
        before = rf"(?:(?<![{ID_CHARS}])|(?<=%2[Ff3]))"  # a component start, URL-encoded / and # included
        after = rf"(?![{ID_CHARS}])"
        self.subject = [(form, re.compile(before + re.escape(text) + after)) for form, text in id_forms.items()]
        self.subject_raw = [
            (form, re.compile(before.encode() + re.escape(text.encode()) + after.encode()))
            for form, text in id_forms.items()
            if len(text.encode()) >= MIN_BINARY_NEEDLE
        ]
        # For the report: every spelling of every value, longest first, replaced by its kind wherever it shows.
        spellings = sorted({n.text: n.kind for n in reversed(self.needles)}.items(), key=lambda s: -len(s[0]))
        self._kinds = dict(spellings)
        self._redactor = re.compile("|".join(re.escape(t) for t, _ in spellings), re.IGNORECASE) if spellings else None

    def redact(self, where: str) -> str:
        """A place with each value of the subject in it replaced by its kind (the subject id as a component)."""
        if self._redactor is not None:
            where = self._redactor.sub(lambda m: f"<{self._kinds.get(m.group(0).lower(), 'value')}>", where)
        for _, pattern in self.subject:
            where = pattern.sub("<subject_id>", where)
        return where

    def in_text(self, text: str) -> list[tuple[str, str]]:
        """(kind, form) of every value in a string."""
        found: dict[str, str] = {}
        cut = self._cut(text)  # ids are case-sensitive; allowed strings are cut out in any case
        for form, pattern in self.subject:
            if pattern.search(cut):
                found["subject_id"] = form
                break
        lowered = cut.lower()
        for n in self.needles:
            if n.kind not in found and n.text in lowered:
                found[n.kind] = n.form
        return list(found.items())

    def in_bytes(self, blob: bytes) -> list[tuple[str, str]]:
        """(kind, form) of every value in bytes: as text if they are UTF-8, else only the long enough values."""
        try:
            return self.in_text(blob.decode("utf-8"))
        except UnicodeDecodeError:
            pass
        cut = blob
        for allowed in self.allowed_raw:
            cut = re.sub(re.escape(allowed), b"\x00", cut, flags=re.IGNORECASE)
        found: dict[str, str] = {}
        for form, pattern in self.subject_raw:
            if pattern.search(cut):
                found["subject_id"] = form
                break
        lowered = cut.lower()
        for n in self.needles:
            if n.kind not in found and len(n.raw) >= MIN_BINARY_NEEDLE and n.raw in lowered:
                found[n.kind] = n.form
        return list(found.items())

    def _cut(self, text: str) -> str:
        """The text with each allowed string (in any case) replaced by a NUL, which no value or id spans."""
        for allowed in self.allowed:
            text = re.sub(re.escape(allowed), "\x00", text, flags=re.IGNORECASE)
        return text


class _Several:
    """Several subjects' matchers as one: a finding names each subject's values by kind and the subject's number in
    the list (one scan of the stack for many erased subjects, instead of one each)."""

    def __init__(self, matchers: list[_Matcher]) -> None:
        self.matchers = matchers

    def redact(self, where: str) -> str:
        for m in self.matchers:
            where = m.redact(where)
        return where

    def in_text(self, text: str) -> list[tuple[str, str]]:
        return [
            (f"{kind} of subject #{n}", form) for n, m in enumerate(self.matchers) for kind, form in m.in_text(text)
        ]

    def in_bytes(self, blob: bytes) -> list[tuple[str, str]]:
        return [
            (f"{kind} of subject #{n}", form) for n, m in enumerate(self.matchers) for kind, form in m.in_bytes(blob)
        ]


# ----------------------------------------------------------------------------------------------- the scan
Report = Callable[[str, list[tuple[str, str]]], None]


def _client(service: str, endpoint_url: str | None) -> Any:
    return boto3.client(service, endpoint_url=endpoint_url) if endpoint_url else boto3.client(service)


def _blob(m: _Matcher, where: str, blob: bytes, report: Report, depth: int = 0) -> None:
    """Bytes as stored, and if they are a zip, each member (name and content), recursively."""
    report(where, m.in_bytes(blob))
    if not blob.startswith(ZIP_MAGIC):
        return
    if depth >= MAX_ZIP_DEPTH:
        report(where, [("zip nested too deep to scan", "")])
        return
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            for info in zf.infolist():
                inner = f"{where} [member {info.filename}]" if depth == 0 else f"{where[:-1]} > {info.filename}]"
                report(inner, m.in_text(info.filename))
                if info.comment:
                    report(inner, m.in_bytes(info.comment))
                if not info.is_dir():
                    _blob(m, inner, zf.read(info), report, depth + 1)
            if zf.comment:
                report(where, m.in_bytes(zf.comment))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, EOFError, ValueError):
        # A zip the scanner cannot open is a zip it cannot vouch for.
        report(where, [("unreadable zip", "")])


def _attribute(m: _Matcher, where: str, value: dict[str, Any], report: Report) -> None:
    """One attribute in DynamoDB's wire form, walked to its leaves."""
    ((kind, inner),) = value.items()
    if kind in ("S", "N"):
        report(where, m.in_text(inner))
    elif kind == "B":
        _blob(m, where, bytes(inner), report)
    elif kind in ("SS", "NS", "BS"):
        for i, member in enumerate(inner):
            _attribute(m, f"{where}<{i}>", {kind[0]: member}, report)  # a set's members are its kind's scalars
    elif kind == "L":
        for i, element in enumerate(inner):
            _attribute(m, f"{where}[{i}]", element, report)
    elif kind == "M":
        for name, element in inner.items():
            report(f"{where} (map key)", m.in_text(name))
            _attribute(m, f"{where}.{name}", element, report)
    # BOOL and NULL hold nothing


def _item_id(item: dict[str, Any], key_names: list[str]) -> str:
    parts = []
    for name in key_names:
        ((_, v),) = item.get(name, {"NULL": "?"}).items()
        parts.append(v if isinstance(v, str) else repr(v))
    return "/".join(parts)


def _scan_dynamodb(m: _Matcher, report: Report, ddb: Any, tables: list[str]) -> None:
    for table in tables:
        described = ddb.describe_table(TableName=table)["Table"]
        key_names = [k["AttributeName"] for k in described["KeySchema"]]
        sources: list[tuple[str, dict[str, Any]]] = [(f"table {table}", {"TableName": table, "ConsistentRead": True})]
        for index in described.get("GlobalSecondaryIndexes", []) + described.get("LocalSecondaryIndexes", []):
            name = index["IndexName"]
            sources.append((f"index {table}/{name}", {"TableName": table, "IndexName": name}))
        for label, args in sources:
            for page in ddb.get_paginator("scan").paginate(**args):
                for item in page["Items"]:
                    at = f"{label} item {_item_id(item, key_names)}"
                    for name, value in item.items():
                        report(f"{at} (attribute name)", m.in_text(name))
                        _attribute(m, f"{at} attr {name}", value, report)


def _object_tags(s3: Any, bucket: str, key: str, version: str) -> list[dict[str, str]]:
    args = {"Bucket": bucket, "Key": key} | ({"VersionId": version} if version != "null" else {})
    tags: list[dict[str, str]] = s3.get_object_tagging(**args).get("TagSet", [])
    return tags


HEADERS = ("ContentType", "ContentDisposition", "ContentEncoding", "ContentLanguage", "CacheControl")


def _scan_s3(m: _Matcher, report: Report, s3: Any, buckets: list[str]) -> None:
    for bucket in buckets:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            for marker in page.get("DeleteMarkers", []):
                report(
                    f"s3://{bucket}/{marker['Key']}?versionId={marker['VersionId']} (delete marker key)",
                    m.in_text(marker["Key"]),
                )
            for version in page.get("Versions", []):
                _scan_version(m, report, s3, bucket, version["Key"], version["VersionId"])
        for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket):
            for upload in page.get("Uploads", []):
                at = f"s3://{bucket}/{upload['Key']}?uploadId={upload['UploadId']} (incomplete multipart upload)"
                report(at, m.in_text(upload["Key"]))


def _scan_version(m: _Matcher, report: Report, s3: Any, bucket: str, key: str, vid: str) -> None:
    """One object version: its key, metadata, headers, tags and body."""
    at = f"s3://{bucket}/{key}?versionId={vid}"
    report(f"{at} (key)", m.in_text(key))
    args = {"Bucket": bucket, "Key": key} | ({"VersionId": vid} if vid != "null" else {})
    got = s3.get_object(**args)
    body = got["Body"].read()
    for name, value in got.get("Metadata", {}).items():
        report(f"{at} (metadata {name})", m.in_text(f"{name}\n{value}"))
    for header in HEADERS:
        if got.get(header):
            report(f"{at} ({header})", m.in_text(str(got[header])))
    for tag in _object_tags(s3, bucket, key, vid):
        report(f"{at} (tag {tag['Key']})", m.in_text(f"{tag['Key']}\n{tag['Value']}"))
    _blob(m, at, body, report)


def _check_template_coverage(resolver: Any, tables: list[str], buckets: list[str]) -> None:
    """Every stateful resource template.yaml declares is among what was scanned (else the scan proves nothing)."""
    from infra import template

    missing = [
        f"{kind} {logical} ({resolver.refs.get(logical)})"
        for kind, seen in (("AWS::DynamoDB::Table", tables), ("AWS::S3::Bucket", buckets))
        for logical in template.resources(kind)
        if resolver.refs.get(logical) not in seen
    ]
    if missing:
        raise AssertionError(f"the residue scan cannot see: {', '.join(missing)}")


def residue(
    values: SubjectValues | list[SubjectValues],
    *,
    allowed: Iterable[str] = (),
    resolver: Any = None,
    endpoint_url: str | None = None,
) -> list[Finding]:
    """Every place in every table, index, object version, delete marker and zip member where a value of the
    subject appears (of any of them, given a list: one scan for them all). `resolver` (the `aws` fixture's) also
    checks that every table and bucket of template.yaml was scanned; `endpoint_url` points the scan at a moto server
    (`make run`'s) instead of the environment's."""
    allowed = list(allowed)
    m: Any = _Several([_Matcher(v, allowed) for v in values]) if isinstance(values, list) else _Matcher(values, allowed)
    findings: dict[tuple[str, str], Finding] = {}

    def report(where: str, found: list[tuple[str, str]]) -> None:
        for kind, form in found:
            finding = Finding(m.redact(where), kind, form)
            findings.setdefault((finding.where, kind), finding)

    ddb, s3 = _client("dynamodb", endpoint_url), _client("s3", endpoint_url)
    tables = sorted(name for page in ddb.get_paginator("list_tables").paginate() for name in page.get("TableNames", []))
    buckets = sorted(b["Name"] for b in s3.list_buckets().get("Buckets", []))
    if resolver is not None:
        _check_template_coverage(resolver, tables, buckets)
    _scan_dynamodb(m, report, ddb, tables)
    _scan_s3(m, report, s3, buckets)
    return list(findings.values())


def assert_no_residue(
    values: SubjectValues | list[SubjectValues],
    allowed: Iterable[str] = (),
    *,
    resolver: Any = None,
    endpoint_url: str | None = None,
) -> None:
    """Fails, listing where and what (never the values), if any value of the subject remains anywhere."""
    found = residue(values, allowed=allowed, resolver=resolver, endpoint_url=endpoint_url)
    if found:
        listing = "\n".join(f"  - {f}" for f in found)
        raise AssertionError(f"{len(found)} residue finding(s) of the erased subject:\n{listing}")


def kinds(findings: Iterable[Finding]) -> set[str]:
    """The kinds of value found, e.g. {"subject_id", "email"}: what most assertions need."""
    return {f.what for f in findings}


def where_found(findings: Iterable[Finding], kind: str) -> Iterator[str]:
    return (f.where for f in findings if f.what == kind)
