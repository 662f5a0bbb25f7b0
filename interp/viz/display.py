"""How token strings are shown in figures and tables.

A token that is a space, a newline or nothing at all prints as a blank cell or an empty tick label,
which reads as "missing data". Figures show such tokens with visible stand-ins instead; the data
itself (``to_frame()``, saved results) always keeps the raw strings.
"""

from __future__ import annotations

__all__ = ["visible_token"]

_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def visible_token(text: str, *, empty: str = "∅") -> str:
    """A token string with whitespace made visible: newlines and tabs escaped, a token made only of
    spaces shown as ``␣`` per space, a leading space as ``␣`` (so `` the`` and ``the`` differ), and
    the empty string (BOS decoded without special tokens) as ``empty``.

    >>> [visible_token(t) for t in [" ", "\\n", " the", "the", "", "a b"]]
    ['␣', '\\\\n', '␣the', 'the', '∅', 'a b']
    """
    if text == "":
        return empty
    for raw, shown in _ESCAPES.items():
        text = text.replace(raw, shown)
    if text.strip(" ") == "":
        return "␣" * len(text)
    if text.startswith(" "):
        return "␣" + text[1:]
    return text
