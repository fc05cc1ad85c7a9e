"""Text that is not the app's own (run and file names, config fields, labels, sentences, error messages that
quote them) made safe for the two renderers it reaches: Streamlit's markdown and Plotly's HTML subset (pure).

- `escape` for anything Streamlit renders as markdown: st.markdown (with or without HTML), st.caption, the alerts,
  headers, st.metric (label and value), st.expander / st.tabs / st.radio / st.button / st.badge labels, st.toast,
  st.progress text and widget labels. Measured in a browser (Streamlit 1.67): every one of those parses markdown
  and GFM autolinks; st.selectbox and st.multiselect options and st.text / st.code / st.dataframe are plain text,
  so they need (and must get) nothing — an entity there would be shown as typed.
- `code` for an inline code span (paths, commands).
- `plot_text` for Plotly: trace and legend names, hover text, marker text, tick labels and titles.
"""

from __future__ import annotations

import html
import re

# One pass over the text: HTML specials become entities, and so do the characters Streamlit's markdown would
# read as syntax anywhere in a line (emphasis, code, links and images, headings, tables, LaTeX `$`, `:emoji:` and
# `:red[...]` directives). Streamlit decodes entities back to characters, so the text is displayed literally,
# never as HTML or markdown. `-`, `+` and `1.` are syntax only where a block starts (lists): _BLOCK_START.
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
    "{": "&#123;",
    "}": "&#125;",
    "^": "&#94;",
    "\n": " ",
    "\r": " ",
    "\t": " ",
}
# Bidi embeddings, overrides and isolates would reorder the text shown after them (a typed U+202E makes
# "gpj.exe" read "exe.jpg"): shown as their code point instead. Joiners (emoji) are kept.
_ESCAPES.update({chr(c): f"U&#43;{c:04X}" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))})
_TABLE = str.maketrans(_ESCAPES)

# GFM autolink literals are found in the *decoded* text (remark's mdast-util-gfm-autolink-literal runs after
# entities and backslash escapes are resolved), so `www.example.com`, `http&#58;//x` and `a@b.org` would still
# become links. An invisible WORD JOINER (U+2060: no width, no line break) where the patterns need a letter or
# punctuation breaks each of them: `www⁠.`, `http⁠://` (every scheme: before each colon) and `a⁠@b`.
WORD_JOINER = "\u2060"
_AUTOLINK = re.compile(r"(?i)(?<=www)(?=\.)|(?<=http)(?=&#58;//)|(?<=https)(?=&#58;//)|(?=@)")
# Where the text starts a block (a caption, a metric value): leading spaces (an indented code block), a list
# marker ("- ", "+ ", "1. ", "1) " is already an entity) or "=" / "-" runs become entities.
_BLOCK_START = re.compile(r"^( +)|^([-+=])|^(\d+)\.")


def _block_start(m: re.Match) -> str:
    if m.group(1):
        return "&#32;" * len(m.group(1))
    if m.group(2):
        return f"&#{ord(m.group(2))};"
    return m.group(3) + "&#46;"


def escape(text: object) -> str:
    """`text` made safe to embed in Streamlit markdown (HTML allowed or not): shown literally, never interpreted,
    and never turned into a link."""
    return _AUTOLINK.sub(WORD_JOINER, _BLOCK_START.sub(_block_start, str(text).translate(_TABLE), count=1))


def code(text: object) -> str:
    """`text` as an inline code span (nothing inside is markdown; a backquote would end it, so it becomes ')."""
    return "`" + str(text).replace("`", "'").replace("\n", " ").replace("\r", " ") + "`"


PLOT_MAX_CHARS = 160  # a chart label longer than this is cut (with …)


def plot_text(text: object, max_chars: int | None = PLOT_MAX_CHARS) -> str:
    """Text made safe for Plotly, which renders <b>, <br>, <a href> … and entities in every label, legend and hover
    text: cut to max_chars (None: not cut), then &, <, > escaped."""
    text = str(text)
    if max_chars is not None and len(text) > max_chars:
        text = text[: max_chars - 1] + "…"
    return html.escape(text, quote=False)


__all__ = ["PLOT_MAX_CHARS", "WORD_JOINER", "code", "escape", "plot_text"]
