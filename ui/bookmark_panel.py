"""The sidebar's bookmarks: save the view on screen (its page and link) under a name; list, open, delete.

The bookmarks file and its checks are vae_core.bookmarks; this module only draws the panel. A view is
what the address bar holds (every page writes its state there, ui.state.write_link), so saving one copies
the current query parameters; opening one switches to its page with them and lets every link be read
again (ui.state.reopen_links), as if the link had been opened in a fresh tab.
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from ui import state
from ui.safe_text import escape
from vae_core import bookmarks
from vae_core.runs import write_error_message

NAME_KEY = "w_bookmark_name"
PICK_KEY = "w_bookmark_pick"
MESSAGE = "bookmark_message"  # (kind, text) shown once in the panel after a save or delete


def current_params() -> dict[str, str]:
    """The address bar's query parameters (the last value of a repeated one)."""
    out: dict[str, str] = {}
    for key in st.query_params:
        values = st.query_params.get_all(key)
        if values:
            out[key] = values[-1]
    return out


def _save(page_path: str) -> None:
    name = st.session_state.get(NAME_KEY, "")
    try:
        saved = bookmarks.save_bookmark(name, page_path, current_params())
    except bookmarks.BookmarkError as e:
        st.session_state[MESSAGE] = ("warning", f"Not saved: {e}.")
    except OSError as e:
        st.session_state[MESSAGE] = ("warning", f"Not saved: {write_error_message(e)}.")
    else:
        st.session_state[MESSAGE] = ("success", f"Saved “{saved.name}”.")
        st.session_state[PICK_KEY] = saved.name
        st.session_state[NAME_KEY] = ""


def _delete() -> None:
    name = st.session_state.get(PICK_KEY)
    if not isinstance(name, str):
        return
    try:
        deleted = bookmarks.delete_bookmark(name)
    except bookmarks.BookmarkError as e:
        st.session_state[MESSAGE] = ("warning", f"Not deleted: {e}.")
    except OSError as e:
        st.session_state[MESSAGE] = ("warning", f"Not deleted: {write_error_message(e)}.")
    else:
        st.session_state[MESSAGE] = ("success", f"Deleted “{name}”." if deleted else f"No bookmark “{name}”.")
        st.session_state.pop(PICK_KEY, None)


def bookmarks_panel(current, pages: Sequence) -> None:
    """The panel (in the sidebar). current: the page shown (st.navigation's result); pages: every st.Page."""
    by_path = {p.url_path: p for p in pages}
    titles = {p.url_path: p.title for p in pages}
    with st.expander("Bookmarks", expanded=False):
        st.caption("Save the view on screen (page, model, sentences, settings) under a name, to open it again "
                   f"later. Kept in {bookmarks.FILE_NAME} in the runs folder.")
        if (message := st.session_state.pop(MESSAGE, None)) is not None:
            kind, text = message
            (st.success if kind == "success" else st.warning)(escape(text))
        broken = False
        try:
            items, problems = bookmarks.read_bookmarks()
        except bookmarks.BookmarkError as e:
            items, problems, broken = [], [], True
            st.warning(f"The bookmarks cannot be read: {escape(e)}. Fix or delete the file to save new ones.")
        for problem in problems[:5]:
            st.caption(f"{escape(bookmarks.FILE_NAME)}: {escape(problem)}")
        st.text_input("Name of this view", key=NAME_KEY, placeholder="lesson 1: tense")
        st.button("Save this view", key="w_bookmark_save", on_click=_save, args=(current.url_path,),
                  disabled=broken, icon=":material/bookmark_add:")
        if not items:
            st.caption("No bookmarks yet." if not broken else "")
            return
        names = [b.name for b in items]
        if st.session_state.get(PICK_KEY) not in names:
            st.session_state[PICK_KEY] = names[0]
        pages_of = {b.name: b.page for b in items}
        # A selectbox shows its options as plain text: a name is never read as markdown or HTML.
        st.selectbox("Bookmarks", names, key=PICK_KEY,
                     format_func=lambda n: f"{n} · {titles.get(pages_of[n], 'unknown page')}")
        c1, c2 = st.columns(2)
        open_clicked = c1.button("Open", key="w_bookmark_open", icon=":material/open_in_browser:")
        c2.button("Delete", key="w_bookmark_delete", on_click=_delete, icon=":material/delete:")
        if open_clicked:
            chosen = next(b for b in items if b.name == st.session_state[PICK_KEY])
            target = by_path.get(chosen.page)
            if target is None:
                st.warning(f"“{escape(chosen.name)}” is a view of a page this app does not have.")
                return
            state.reopen_links()
            st.switch_page(target, query_params=dict(chosen.params))


__all__ = ["bookmarks_panel", "current_params"]
