"""vae_core.bookmarks: the bookmarks file's round trip, its checks of every entry, and files it must not touch.
Also the pure half of the links (ui.state's parse / format of each page's query parameters)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ui import state
from vae_core import bookmarks
from vae_core.bookmarks import BookmarkError


def test_save_list_replace_delete_round_trip(tmp_path: Path):
    path = bookmarks.bookmarks_path(tmp_path)
    assert path == tmp_path / "bookmarks.json"
    assert bookmarks.read_bookmarks(path) == ([], [])  # no file: no bookmarks, no problem
    bookmarks.save_bookmark("  lesson   1 ", "sliders", {"run": "tiny", "s": "the cat sleeps ."}, path)
    bookmarks.save_bookmark("map", "latent-map", {"method": "pca"}, path)
    items, problems = bookmarks.read_bookmarks(path)
    assert problems == []
    assert [b.name for b in items] == ["lesson 1", "map"]
    assert items[0].page == "sliders" and dict(items[0].params) == {"run": "tiny", "s": "the cat sleeps ."}
    assert items[0].created.endswith("Z")
    bookmarks.save_bookmark("lesson 1", "interpolation", {"interp": "slerp"}, path)  # same name: replaced
    items, _ = bookmarks.read_bookmarks(path)
    assert [(b.name, b.page) for b in items] == [("map", "latent-map"), ("lesson 1", "interpolation")]
    assert bookmarks.delete_bookmark("map", path) is True
    assert bookmarks.delete_bookmark("map", path) is False
    assert [b.name for b in bookmarks.read_bookmarks(path)[0]] == ["lesson 1"]
    assert not [p for p in tmp_path.iterdir() if p.name != "bookmarks.json"]  # no temp file left behind


def test_default_path_is_the_runs_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VAE_RUNS_DIR", str(tmp_path / "runs"))
    bookmarks.save_bookmark("x", "", {}, None)  # "" = the default page; the folder is made
    assert json.loads((tmp_path / "runs" / "bookmarks.json").read_text())["bookmarks"][0]["page"] == ""


@pytest.mark.parametrize(
    ("name", "page", "params", "why"),
    [
        ("", "sliders", {}, "needs a name"),
        ("x" * 81, "sliders", {}, "at most 80"),
        (3, "sliders", {}, "must be text"),
        ("ok", "../etc", {}, "page"),
        ("ok", "Sliders", {}, "page"),
        ("ok", "sliders", {"S!": "x"}, "not a query parameter"),
        ("ok", "sliders", {"s": 3}, "must be text"),
        ("ok", "sliders", {"s": "a\x00b"}, "control"),
        ("ok", "sliders", {f"p{i}": "x" for i in range(41)}, "at most 40"),
    ],
)
def test_bad_bookmarks_are_refused(tmp_path: Path, name, page, params, why):
    with pytest.raises(BookmarkError, match=why):
        bookmarks.save_bookmark(name, page, params, tmp_path / "bookmarks.json")
    assert not (tmp_path / "bookmarks.json").exists()


def test_bad_entries_are_skipped_with_a_reason(tmp_path: Path):
    path = tmp_path / "bookmarks.json"
    path.write_text(json.dumps({"version": 1, "bookmarks": [
        {"name": "good", "page": "sliders", "params": {"s": "a"}},
        {"name": "good", "page": "traversals", "params": {}},
        {"name": "", "page": "sliders"},
        {"name": "x", "page": "sliders", "params": ["s", "a"]},
        None,
        {"name": "also good", "page": "traversals", "params": {"n": "5"}, "created": 7},
    ]}), encoding="utf-8")
    items, problems = bookmarks.read_bookmarks(path)
    assert [b.name for b in items] == ["good", "also good"]
    assert items[1].created == ""
    assert [p.split(":")[0] for p in problems] == ["entry 2 skipped", "entry 3 skipped", "entry 4 skipped",
                                                   "entry 5 skipped"]
    assert "second bookmark" in problems[0]


@pytest.mark.parametrize(
    "content",
    [b"{not json", b"[]", b'{"bookmarks": 3}', b'{"version": 2, "bookmarks": []}', b"\xff\xfe\x00", b"[" * 100_000],
)
def test_a_file_that_is_not_a_bookmarks_file_is_reported_and_never_overwritten(tmp_path: Path, content: bytes):
    path = tmp_path / "bookmarks.json"
    path.write_bytes(content)
    with pytest.raises(BookmarkError):
        bookmarks.read_bookmarks(path)
    with pytest.raises(BookmarkError):
        bookmarks.save_bookmark("x", "sliders", {}, path)
    with pytest.raises(BookmarkError):
        bookmarks.delete_bookmark("x", path)
    assert path.read_bytes() == content


def test_a_symlinked_bookmarks_file_is_not_followed(tmp_path: Path):
    secret = tmp_path / "secret.json"
    secret.write_text('{"bookmarks": []}', encoding="utf-8")
    link = tmp_path / "runs" / "bookmarks.json"
    link.parent.mkdir()
    os.symlink(secret, link)
    with pytest.raises(BookmarkError, match="not a plain file"):
        bookmarks.read_bookmarks(link)


def test_huge_file_refused(tmp_path: Path):
    path = tmp_path / "bookmarks.json"
    path.write_bytes(b" " * (bookmarks.MAX_FILE_BYTES + 1))
    with pytest.raises(BookmarkError, match="larger"):
        bookmarks.read_bookmarks(path)


# --------------------------------------------------------------------------- links (pure)


def _param(page: str, name: str) -> state.LinkParam:
    return next(p for p in state.LINKS[page] if p.name == name)


@pytest.mark.parametrize(
    ("page", "name", "raw", "expected"),
    [
        ("interp", "interp", "slerp", "slerp"),
        ("interp", "steps", "30", 30),
        ("interp", "collapse", "0", False),
        ("traversals", "dims", "3,1", [3, 1]),
        ("traversals", "span", "0.25", 0.25),
        ("latent-map", "mdims", "3", 3),
        ("latent-map", "q", " the  cat ", "the cat"),
        ("decode", "dec", "beam", "beam"),
        ("sliders", "z", "9,-9", [4.0, -4.0]),  # z is clipped to the sliders' range, as before
    ],
)
def test_link_values_parse(page, name, raw, expected):
    assert state.parse_link_value(_param(page, name), [raw]) == expected


@pytest.mark.parametrize(
    ("page", "name", "raw"),
    [
        ("interp", "interp", "cubic"),
        ("interp", "steps", "31"),
        ("interp", "steps", "8.5"),
        ("interp", "collapse", "maybe"),
        ("traversals", "dims", "1,1"),
        ("traversals", "dims", "1,-1"),
        ("traversals", "span", "inf"),
        ("traversals", "span", "nan"),
        ("traversals", "n", "9" * 40),
        ("latent-map", "q", "x" * 201),
        ("decode", "temp", "2.5"),
        ("sliders", "z", "a"),
    ],
)
def test_bad_link_values_are_refused(page, name, raw):
    assert state.is_bad(state.parse_link_value(_param(page, name), raw))


def test_parse_link_with_run_bounds_and_a_broken_mapping():
    values, bad = state.parse_link("traversals", {"dims": "0,3", "n": "5", "other": "x"}, limits={"dims": (0, 3)})
    assert values == {"dims": [0, 3], "n": 5} and bad == []
    values, bad = state.parse_link("traversals", {"dims": "0,4"}, limits={"dims": (0, 3)})
    assert values == {} and bad == ["dims"]

    class Broken(dict):
        def __contains__(self, key):
            raise RuntimeError("boom")

    assert state.parse_link("interp", Broken()) == ({}, [])


def test_link_round_trip_and_defaults_left_out():
    session = {"w_interp_method": "slerp", "w_interp_steps": 8, "w_interp_collapse": False,
               state.SENTENCE: "the cat .", state.SENTENCE_2: ""}
    texts = state.link_values("interp", session)
    assert texts == {"s": "the cat .", "s2": None, "interp": "slerp", "steps": None, "collapse": "0"}
    parsed, bad = state.parse_link("interp", {k: v for k, v in texts.items() if v is not None})
    assert bad == [] and parsed == {"s": "the cat .", "interp": "slerp", "collapse": False}
    assert state.link_values("traversals", {"w_trav_dims": [2, 0], "w_trav_span": 1.5})["dims"] == "2,0"
    assert state.INTERPOLATION_METHODS == __import__("vae_core.latent", fromlist=["x"]).INTERPOLATION_METHODS


def test_every_link_parameter_name_is_unique_within_its_page_and_bookmarkable():
    for page, params in state.LINKS.items():
        names = [p.name for p in params]
        assert len(names) == len(set(names)), page
        for n in names:  # a bookmark stores them: they must pass its check
            bookmarks.make_bookmark("x", "sliders", {n: "1"})
