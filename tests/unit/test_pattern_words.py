"""A 422 says in words what a pattern asks for: every pattern of the contract, broken, is answered with the words
registered for it (models.common.worded), never with the regular expression pydantic would quote."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from infra.openapi import document
from tests.unit.test_contract_patterns import PATTERNS, Reader, sample, server_validator, variants

REGEX_SIGNS = set("^$[]{}\\")


def broken(pattern: str) -> ValidationError:
    """pydantic's error for the first text near a sample of `pattern` that the server refuses."""
    validator = server_validator(pattern)
    assert validator is not None
    for text in [*variants(sample(Reader(pattern).tree[0])), "", "\x00", " "]:
        try:
            validator.validate_python(text)
        except ValidationError as error:
            return error
    raise AssertionError(f"nothing near a sample breaks {pattern}")


def test_the_document_is_built_from_the_registered_patterns() -> None:
    from chatsphere.models.common import PATTERN_WORDS

    document()  # imports every function's routes and models, and so registers every pattern
    assert set(PATTERNS) <= set(PATTERN_WORDS), sorted(set(PATTERNS) - set(PATTERN_WORDS))


@pytest.mark.parametrize("pattern", PATTERNS)
def test_a_broken_pattern_is_answered_in_words(pattern: str) -> None:
    from chatsphere.handlers.http import _field_errors
    from chatsphere.models.common import PATTERN_WORDS

    document()
    # Given a text that breaks the pattern, as the server sees it
    error = broken(pattern)
    # When the error becomes the 422's field errors
    (field,) = _field_errors(error.errors())
    # Then it says what the field must be, in words, and quotes no regular expression
    assert field.type == "string_pattern_mismatch"
    assert field.msg == f"must be {PATTERN_WORDS[pattern]}"
    assert pattern not in field.msg
    assert not REGEX_SIGNS & set(field.msg), field.msg


def test_an_unregistered_pattern_is_not_quoted_either() -> None:
    from chatsphere.handlers.http import _field_errors

    (field,) = _field_errors(broken(r"^[q]{3}$").errors())
    assert field.msg == "does not have the documented shape"
