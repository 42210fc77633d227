"""Exported CSV cannot run as a spreadsheet formula (OWASP CSV injection); the JSON keeps the text as written."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import UTC, datetime

import pytest

from chatsphere.logic.export import write_package
from chatsphere.logic.processing import processing_record
from chatsphere.models.requests import ExportFormat
from chatsphere.models.settings import TenantSettings
from chatsphere.models.subjects import Interaction

DANGEROUS = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tindent", "\rcarriage"]
RECORD = processing_record(TenantSettings(), "Acme", {})
HARMLESS = ["hello = world", "a-b", "mail me @ home", "'quoted already"]


def package(fmt: ExportFormat, texts: list[str]) -> zipfile.ZipFile:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        Interaction(interaction_id=f"i{n}", conversation_id="c", role="customer", text=t, occurred_at=at)
        for n, t in enumerate(texts)
    ]
    sink = io.BytesIO()
    write_package(sink, fmt, {"subject_id": "u-1"}, RECORD, lambda: iter(rows), at)
    return zipfile.ZipFile(io.BytesIO(sink.getvalue()))


def test_csv_cells_that_a_spreadsheet_would_evaluate_start_with_an_apostrophe() -> None:
    with package("csv", DANGEROUS + HARMLESS) as zf:
        rows = list(csv.DictReader(io.StringIO(zf.read("interactions.csv").decode(), newline="")))
        dictionary = zf.read("data_dictionary.csv").decode()
    assert [r["text"] for r in rows] == ["'" + t for t in DANGEROUS] + HARMLESS
    assert "apostrophe" in dictionary


@pytest.mark.parametrize("column", ["conversation_id", "channel"])
def test_every_text_column_is_protected_not_only_the_message(column: str) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    fields = {"conversation_id": "c", "channel": None, column: "-cmd"}
    row = Interaction(interaction_id="i", role="customer", text="x", occurred_at=at, **fields)
    sink = io.BytesIO()
    write_package(sink, "csv", {}, RECORD, lambda: iter([row]), at)
    with zipfile.ZipFile(io.BytesIO(sink.getvalue())) as zf:
        (written,) = csv.DictReader(io.StringIO(zf.read("interactions.csv").decode(), newline=""))
    assert written[column] == "'-cmd"


def test_the_json_export_keeps_the_text_exactly_as_written() -> None:
    with package("json", DANGEROUS) as zf:
        texts = [json.loads(line)["text"] for line in zf.read("interactions.jsonl").decode().splitlines()]
    assert texts == DANGEROUS
