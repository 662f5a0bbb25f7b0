"""Token strings in figures: whitespace and empty tokens get visible stand-ins."""

from __future__ import annotations

import pytest

from interp.viz.display import visible_token


@pytest.mark.parametrize(("raw", "shown"), [
    (" ", "␣"), ("   ", "␣␣␣"), ("\n", "\\n"), ("\n\n", "\\n\\n"), ("\t", "\\t"), (" the", "␣the"),
    ("the", "the"), ("a b", "a b"), ("", "∅"), ("é", "é"), (" \n", "␣\\n"),
])
def test_visible_token(raw, shown):
    assert visible_token(raw) == shown


def test_visible_token_never_blank_for_any_whitespace_mix():
    for raw in ["", " ", "\n", "\t", " \t\n ", "\r"]:
        assert visible_token(raw).strip() != ""
