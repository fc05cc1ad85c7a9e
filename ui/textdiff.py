"""Word-level change marking for decoded sentences, as escaped HTML (pure; no streamlit)."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

# One pass over the text: HTML specials become entities, and so do the characters Streamlit's
# markdown would read as syntax (emphasis, code, links, headings, tables, LaTeX `$`, `:emoji:` and
# `:red[...]` directives), so user text shown through st.markdown(unsafe_allow_html=True) is
# displayed literally, never as HTML or markdown.
_ESCAPES = {
    "&": "&amp;",
    "<": "&lt;",
    ">": "&gt;",
    '"': "&quot;",
    "'": "&#39;",
    "*": "&#42;",
    "_": "&#95;",
    "`": "&#96;",
    "[": "&#91;",
    "]": "&#93;",
    "(": "&#40;",
    ")": "&#41;",
    "#": "&#35;",
    "\\": "&#92;",
    "~": "&#126;",
    "|": "&#124;",
    "$": "&#36;",
    ":": "&#58;",
    "!": "&#33;",
    "+": "&#43;",
    "-": "&#45;",
    "=": "&#61;",
    "{": "&#123;",
    "}": "&#125;",
    "^": "&#94;",
    "\n": " ",
    "\r": " ",
    "\t": " ",
}
# Bidi embeddings, overrides and isolates would reorder the text shown after them (a typed U+202E
# makes "gpj.exe" read "exe.jpg"): shown as their code point instead. Joiners (emoji) are kept.
_ESCAPES.update({chr(c): f"U&#43;{c:04X}" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))})
_TABLE = str.maketrans(_ESCAPES)


def escape(text: str) -> str:
    """`text` made safe to embed in markdown-with-HTML: shown literally, never interpreted."""
    return str(text).translate(_TABLE)


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
