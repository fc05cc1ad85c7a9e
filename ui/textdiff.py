"""Word-level change marking for decoded sentences, as escaped HTML (pure; no streamlit).

The escaping itself lives in ui.safe_text; `escape` is re-exported here for the pages that import it from here."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from ui.safe_text import escape  # the markdown escaper (also re-exported for the pages)


def mark_changes(reference: Sequence[str], tokens: Sequence[str]) -> str:
    """HTML of `tokens` with every word that is new or changed relative to `reference` in <mark>.

    Both are word lists. Every word is escaped (user text may hold `<script>`), so the result is
    safe for st.markdown(..., unsafe_allow_html=True). Deleted words are not shown.
    """
    ref, toks = [str(t) for t in reference], [str(t) for t in tokens]
    matcher = difflib.SequenceMatcher(a=ref, b=toks, autojunk=False)
    out: list[str] = []
    for tag, _i1, _i2, j1, j2 in matcher.get_opcodes():
        words = [escape(w) for w in toks[j1:j2]]
        if tag == "equal":
            out.extend(words)
        elif tag in ("replace", "insert"):
            out.extend(f"<mark>{w}</mark>" for w in words)
    return " ".join(out)


def changed_words(reference: Sequence[str], tokens: Sequence[str]) -> int:
    """How many words of `tokens` mark_changes would mark."""
    matcher = difflib.SequenceMatcher(a=list(reference), b=list(tokens), autojunk=False)
    return sum(j2 - j1 for tag, _a, _b, j1, j2 in matcher.get_opcodes() if tag in ("replace", "insert"))


__all__ = ["changed_words", "escape", "mark_changes"]
