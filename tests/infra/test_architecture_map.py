"""docs/architecture.md's capability map is true for the tree: each file it names exists, in the layer of its
column, and each function it names is one of template.yaml's (and every function of the template has a row).

The map is a Markdown table under "## One name per capability". In each cell, every backticked token ending in
`.py` is a path (code relative to functions/chatsphere/, tests from the repository's root); the rest are notes."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from infra import template

ROOT = template.ROOT
PAGE = ROOT / "docs" / "architecture.md"
CODE = ROOT / "functions" / "chatsphere"
HEADING = "## One name per capability"
EMPTY = "—"

# column -> where its paths must live (a path must start with one of these)
CODE_COLUMNS: dict[str, tuple[str, ...]] = {
    "handler": ("handlers/", "cli.py"),  # the console command is the entry point of what has no function
    "logic": ("logic/",),
    "DAL": ("dal/",),
    "models": ("models/",),
}
TEST_COLUMNS: dict[str, tuple[str, ...]] = {
    "unit tests": ("tests/unit/",),
    "integration tests": ("tests/integration/", "tests/local_stack/", "tests/infra/", "tests/residue.py"),
}
FUNCTION_COLUMN = "function (template.yaml)"
COLUMNS = ["capability", FUNCTION_COLUMN, *CODE_COLUMNS, *TEST_COLUMNS]


@dataclass(frozen=True)
class Row:
    capability: str
    cells: dict[str, str]

    def paths(self, column: str) -> list[str]:
        return [token for token in backticked(self.cells[column]) if token.endswith(".py")]


def backticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def split_row(line: str) -> list[str]:
    # A cell may hold `a\|b`: an escaped pipe is not a column border.
    cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [cell.strip() for cell in cells]


def read_map(text: str) -> list[Row]:
    """The table that follows the map's heading: its header must be COLUMNS, one row per capability."""
    section = text.split(HEADING, 1)[1].split("\n## ", 1)[0]
    lines = [line for line in section.splitlines() if line.startswith("|")]
    assert lines, f"no table under {HEADING!r}"
    header, rule, *body = lines
    assert split_row(header) == COLUMNS, "the map's columns changed: update COLUMNS with them"
    assert set(rule.replace("|", "").split()) <= {"---"}, "the second line of the map is its header rule"
    rows = []
    for line in body:
        cells = split_row(line)
        assert len(cells) == len(COLUMNS), f"a row of the map has {len(cells)} cells, not {len(COLUMNS)}: {line}"
        rows.append(Row(cells[0], dict(zip(COLUMNS, cells, strict=True))))
    return rows


MAP = read_map(PAGE.read_text(encoding="utf-8"))
CAPABILITIES = [row.capability for row in MAP]


def test_the_map_has_one_row_per_capability() -> None:
    assert len(MAP) >= 10
    assert len(set(CAPABILITIES)) == len(CAPABILITIES), "a capability has two rows"


@pytest.mark.parametrize("row", MAP, ids=CAPABILITIES)
def test_each_file_the_map_names_exists_in_its_columns_layer(row: Row) -> None:
    missing, misplaced = [], []
    for column, homes in {**CODE_COLUMNS, **TEST_COLUMNS}.items():
        base = CODE if column in CODE_COLUMNS else ROOT
        for path in row.paths(column):
            if not path.startswith(homes):
                misplaced.append(f"{column}: {path}")
            if not (base / path).is_file():
                missing.append(f"{column}: {path}")
    assert not misplaced, f"{row.capability}: paths outside their column's layer {misplaced}"
    assert not missing, f"{row.capability}: the map names files that do not exist {missing}"


@pytest.mark.parametrize("row", MAP, ids=CAPABILITIES)
def test_each_cell_names_a_file_or_says_it_is_empty(row: Row) -> None:
    """A blank cell would let a file go unnoticed: each layer names its files, or says `—` (the layer has none)."""
    for column in (*CODE_COLUMNS, *TEST_COLUMNS):
        cell = row.cells[column]
        assert row.paths(column) or cell == EMPTY, f"{row.capability}, {column}: {cell!r} names no .py file"
    # Every capability has a home in logic and is tested; only a handler or the models may be absent.
    assert row.paths("logic"), f"{row.capability} has no logic module"
    assert row.paths("unit tests") or row.paths("integration tests"), f"{row.capability} has no test"


@pytest.mark.parametrize("row", MAP, ids=CAPABILITIES)
def test_each_function_the_map_names_is_in_the_template(row: Row) -> None:
    cell = row.cells[FUNCTION_COLUMN]
    named = [token for token in backticked(cell) if token.endswith("Function")]
    assert named or cell.startswith(EMPTY), f"{row.capability}: {cell!r} names no function and is not `—`"
    unknown = sorted(set(named) - set(template.functions()))
    assert not unknown, f"{row.capability}: not functions of template.yaml {unknown}"


def test_every_function_of_the_template_is_in_the_map() -> None:
    named = {token for row in MAP for token in backticked(row.cells[FUNCTION_COLUMN])}
    assert sorted(set(template.functions()) - named) == []


def test_the_checks_catch_a_missing_file_and_a_misplaced_one() -> None:
    """The reader and checks above on a table that is wrong: they must see it (a check that cannot fail is none)."""
    row = "| x | `IntakeFunction` | `handlers/nothing_here.py` | `dal/subjects.py` | — | — | — | — |"
    table = f"{HEADING}\n\n| {' | '.join(COLUMNS)} |\n|{' --- |' * len(COLUMNS)}\n{row}\n"
    (broken,) = read_map(table)
    assert broken.paths("handler") == ["handlers/nothing_here.py"]
    with pytest.raises(AssertionError, match="outside their column's layer"):  # dal/ in the logic column
        test_each_file_the_map_names_exists_in_its_columns_layer(broken)
    fixed_logic = Row("x", {**broken.cells, "logic": "`logic/intake.py`"})
    with pytest.raises(AssertionError, match="do not exist"):  # handlers/nothing_here.py
        test_each_file_the_map_names_exists_in_its_columns_layer(fixed_logic)
    with pytest.raises(AssertionError, match=r"names no \.py file"):
        test_each_cell_names_a_file_or_says_it_is_empty(Row("x", {**broken.cells, "DAL": "notes only"}))
    unknown = Row("x", {**broken.cells, FUNCTION_COLUMN: "`NoFunction`"})
    with pytest.raises(AssertionError, match=r"not functions of template\.yaml"):
        test_each_function_the_map_names_is_in_the_template(unknown)
