"""Named bookmarks: a view of the app (a page and its link's query parameters) saved under a name.

They live in one JSON file, `<runs>/bookmarks.json` (bookmarks_path), so a teacher can prepare a lesson's
views in advance and open them from the sidebar. The file is input like any other: read_bookmarks checks
every entry (types, lengths, characters) and skips a bad one with a reason instead of failing; a file that is
not a bookmarks file at all is reported and never overwritten (save and delete refuse). Writes are atomic
(vae_core.runs.write_json). The values are the link's raw strings: the app validates them again when it
opens the view, as it does for any link.

    {"version": 1, "bookmarks": [{"name": "lesson 1: tense", "page": "sliders",
                                  "params": {"run": "additive-b06", "s": "the cat sleeps ."}, "created": "…"}]}
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from vae_core.run_folders import runs_dir
from vae_core.runs import write_json

FILE_NAME = "bookmarks.json"
VERSION = 1
MAX_BOOKMARKS = 500  # a lesson plan, not a database
MAX_NAME_CHARS = 80
MAX_PARAMS = 40  # query parameters of one view (the Latent map has the most, about 15)
MAX_VALUE_CHARS = 20_000  # a `z` of 1,024 dimensions is ~6,000 characters
MAX_FILE_BYTES = 4 * 1024 * 1024
_PAGE = re.compile(r"^[a-z0-9][a-z0-9\-]{0,39}$|^$")  # a page's url path; "" is the default page (Overview)
_PARAM = re.compile(r"^[a-z][a-z0-9_]{0,19}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class BookmarkError(ValueError):
    """A bookmark that cannot be saved (bad name, bad view) or a bookmarks file that cannot be changed."""


@dataclass(frozen=True, slots=True)
class Bookmark:
    name: str  # shown to the user (escape it): 1–80 characters, no control characters
    page: str  # the page's url path ("" = the default page)
    params: tuple[tuple[str, str], ...]  # the link's query parameters, in order
    created: str = ""  # ISO 8601 UTC, informative only

    def to_dict(self) -> dict:
        return {"name": self.name, "page": self.page, "params": dict(self.params), "created": self.created}


def bookmarks_path(folder: Path | None = None) -> Path:
    """The bookmarks file: <folder>/bookmarks.json, the user's runs folder by default."""
    return Path(folder if folder is not None else runs_dir()) / FILE_NAME


def clean_name(name: object) -> str:
    """A bookmark name with spaces normalised; BookmarkError when it is empty, too long or not text."""
    if not isinstance(name, str):
        raise BookmarkError("a bookmark name must be text")
    text = " ".join(_CONTROL.sub(" ", name).split())
    if not text:
        raise BookmarkError("a bookmark needs a name")
    if len(text) > MAX_NAME_CHARS:
        raise BookmarkError(f"a bookmark name has at most {MAX_NAME_CHARS} characters (this one has {len(text)})")
    return text


def make_bookmark(name: object, page: object, params: Mapping[str, object], created: object = "") -> Bookmark:
    """A checked Bookmark; BookmarkError saying what is wrong."""
    text = clean_name(name)
    if not isinstance(page, str) or not _PAGE.match(page):
        raise BookmarkError("the page must be a page's address (lowercase letters, digits and '-')")
    if not isinstance(params, Mapping):
        raise BookmarkError("params must be an object of query parameters")
    if len(params) > MAX_PARAMS:
        raise BookmarkError(f"a view has at most {MAX_PARAMS} query parameters")
    items = []
    for key, value in params.items():
        if not isinstance(key, str) or not _PARAM.match(key):
            raise BookmarkError(f"{str(key)[:30]!r} is not a query parameter name")
        if not isinstance(value, str) or len(value) > MAX_VALUE_CHARS or _CONTROL.search(value):
            raise BookmarkError(f"the value of {key!r} must be text of at most {MAX_VALUE_CHARS:,} characters "
                                "without control characters")
        items.append((key, value))
    return Bookmark(text, page, tuple(items), created if isinstance(created, str) and len(created) <= 40 else "")


def read_bookmarks(path: Path | None = None) -> tuple[list[Bookmark], list[str]]:
    """The bookmarks in the file (none when there is no file) and a reason for each entry skipped.

    Raises BookmarkError when the file is not a bookmarks file (not JSON, wrong shape, too large, a link
    out of its folder): the caller says so and leaves the file alone.
    """
    path = bookmarks_path() if path is None else Path(path)
    if not path.exists() and not path.is_symlink():
        return [], []
    try:
        if path.is_symlink() or not path.is_file():
            raise BookmarkError(f"{path.name} is not a plain file")
        if path.stat().st_size > MAX_FILE_BYTES:
            raise BookmarkError(f"{path.name} is larger than {MAX_FILE_BYTES // 1024 // 1024} MiB")
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise BookmarkError(f"{path.name} cannot be read as JSON ({type(e).__name__})") from e
    if not isinstance(data, dict) or not isinstance(data.get("bookmarks"), list):
        raise BookmarkError(f'{path.name} is not a bookmarks file (no "bookmarks" list)')
    if data.get("version", VERSION) != VERSION:
        raise BookmarkError(f"{path.name} has version {str(data.get('version'))[:20]}; this app reads {VERSION}")
    out: list[Bookmark] = []
    problems: list[str] = []
    seen: set[str] = set()
    for i, entry in enumerate(data["bookmarks"]):
        if len(out) >= MAX_BOOKMARKS:
            problems.append(f"entries after the first {MAX_BOOKMARKS} are ignored")
            break
        try:
            if not isinstance(entry, dict):
                raise BookmarkError("it is not an object")
            b = make_bookmark(entry.get("name"), entry.get("page"), entry.get("params", {}), entry.get("created", ""))
        except BookmarkError as e:
            problems.append(f"entry {i + 1} skipped: {e}")
            continue
        if b.name in seen:
            problems.append(f"entry {i + 1} skipped: a second bookmark named {b.name!r}")
            continue
        seen.add(b.name)
        out.append(b)
    return out, problems


def _write(path: Path, bookmarks: list[Bookmark]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"version": VERSION, "bookmarks": [b.to_dict() for b in bookmarks]})


def save_bookmark(name: object, page: object, params: Mapping[str, object], path: Path | None = None) -> Bookmark:
    """Save a view under `name` (replacing a bookmark of that name); the saved Bookmark. BookmarkError when
    the bookmark or the existing file is bad (the file is then left as it is)."""
    path = bookmarks_path() if path is None else Path(path)
    current, _problems = read_bookmarks(path)  # skipped entries were unreadable: they are not kept
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    new = make_bookmark(name, page, params, created)
    kept = [b for b in current if b.name != new.name]
    if len(kept) >= MAX_BOOKMARKS:
        raise BookmarkError(f"there are already {MAX_BOOKMARKS} bookmarks; delete some first")
    _write(path, [*kept, new])
    return new


def delete_bookmark(name: str, path: Path | None = None) -> bool:
    """Delete the bookmark named `name`; False when there is none."""
    path = bookmarks_path() if path is None else Path(path)
    current, _problems = read_bookmarks(path)
    kept = [b for b in current if b.name != name]
    if len(kept) == len(current):
        return False
    _write(path, kept)
    return True


__all__ = ["Bookmark", "BookmarkError", "bookmarks_path", "clean_name", "delete_bookmark", "make_bookmark",
           "read_bookmarks", "save_bookmark"]
