"""Bad uploads (corpus on the Train page, labels on the Latent map page): a clear error, nothing written,
the page keeps working. The size cap is set in .streamlit/config.toml and checked again in code.

Already covered elsewhere (not repeated here): tests/core/test_jobs.py::test_validate_upload_errors
(wrong extension, blank lines, too few sentences, bad JSONL), tests/core/test_corpus.py (reader errors and
a hypothesis test of parse_text on arbitrary bytes).
"""

from __future__ import annotations

import html
import json
import os
import tomllib
from pathlib import Path

import pytest
from streamlit import config as st_config

from tests.app.conftest import REPO
from ui import analysis
from vae_core import jobs
from vae_core.corpus import MAX_COLUMNS, MAX_LABEL_CHARS, CorpusError, parse_text

GOOD = "\n".join(f"the cat {i} sat on the mat ." for i in range(60)).encode()
ONE_MB = 1 << 20

# (file name, bytes, what the message says)
BAD_UPLOADS = {
    "empty": ("empty.txt", b"", "empty"),
    "binary": ("model.txt", b"\x00\x01\x02PK\x03\x04" * 200, "binary"),
    "binary_no_nul": ("noise.txt", bytes(range(128, 256)) * 40, "not UTF-8"),
    "non_utf8": ("latin.txt", "café crème brûlée\n".encode("latin-1") * 60, "not UTF-8"),
    "no_text_column": ("nocol.csv", b"a,b\n" + b"1,2\n" * 60, "no text column"),
    "ragged_rows": ("ragged.csv", b"text,label\n" + b"the cat sat .,x\n" * 10 + b"the dog ran .,y,extra\n", "fields"),
    "sentence_1mb_txt": ("one.txt", b"w" * ONE_MB + b"\n", "characters"),
    "sentence_1mb_csv": ("one.csv", b"text,label\n" + b"w" * ONE_MB + b",x\n", "cannot be read as CSV"),
    "sentence_1mb_jsonl": ("one.jsonl", b'{"text": "' + b"w" * ONE_MB + b'"}\n', "characters"),
}


def snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file under the roots: path -> (size, mtime_ns); missing roots are empty. The empty lock file
    of the training queue (vae_core.jobs.LOCK_NAME) holds no data and is left out."""
    out = {}
    for root in roots:
        if root.exists():
            for p in root.rglob("*"):
                if p.is_file() and p.name != jobs.LOCK_NAME:
                    st = p.stat()
                    out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


# --------------------------------------------------------------------------- the validators (no Streamlit)


@pytest.mark.parametrize("case", list(BAD_UPLOADS))
def test_validate_upload_refuses_with_a_message(case):
    name, data, message = BAD_UPLOADS[case]
    texts, err = jobs.validate_upload(name, data)
    assert texts is None
    assert err and message in err, err


def test_upload_over_the_cap_is_refused_before_parsing(monkeypatch):
    calls = []
    monkeypatch.setattr(jobs, "parse_text", lambda *a, **k: calls.append(a))
    texts, err = jobs.validate_upload("big.txt", GOOD, max_bytes=len(GOOD) - 1)
    assert texts is None and "upload limit" in err
    assert calls == [], "an oversized upload is not parsed"


def test_csv_field_over_the_csv_module_limit_is_a_corpus_error():
    """A CSV/TSV cell longer than csv's field limit (131,072 characters) used to raise csv.Error."""
    for fmt, sep in (("csv", b","), ("tsv", b"\t")):
        with pytest.raises(CorpusError, match="cannot be read"):
            parse_text(b"text" + sep + b"label\n" + b"w" * 200_000 + sep + b"x\n", fmt, f"f.{fmt}")
    assert jobs.upload_columns("h.csv", b"w" * ONE_MB + b",x\n1,2\n") == []  # the header itself too long


def test_config_sets_the_upload_cap_and_the_code_uses_the_same():
    cfg = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert cfg["server"]["maxUploadSize"] == jobs.DEFAULT_UPLOAD_MB
    default = jobs.validate_upload.__defaults__[1]  # max_bytes
    assert default == jobs.DEFAULT_UPLOAD_MB * 1024 * 1024


# --------------------------------------------------------------------------- the Train page


@pytest.fixture
def upload_cap_mb():
    """Set server.maxUploadSize for the test (the Train page reads it) and restore it afterwards."""
    old = st_config.get_option("server.maxUploadSize")

    def set_cap(mb: int) -> None:
        st_config.set_option("server.maxUploadSize", mb)

    yield set_cap
    st_config.set_option("server.maxUploadSize", old)


def test_train_page_refuses_every_bad_upload_and_writes_nothing(open_app, tmp_path, upload_cap_mb):
    runs = Path(os.environ["VAE_RUNS_DIR"])
    before = snapshot(tmp_path)
    upload_cap_mb(2)  # the cap the page reads from the server config: 2 MB here (50 in config.toml)
    at = open_app("app_pages/train.py")
    at.radio(key="train_corpus_source").set_value("upload").run()
    cases = {**BAD_UPLOADS, "over_cap": ("big.txt", GOOD * (2 * ONE_MB // len(GOOD) + 2), "upload limit")}
    for case, (name, data, message) in cases.items():
        mime = "text/csv" if name.endswith(".csv") else "text/plain"
        at.file_uploader(key="w_train_upload").set_value((name, data, mime)).run()
        assert not at.exception, (case, [e.value for e in at.exception])
        errors = [e.value for e in at.error]
        assert any("Cannot use this file" in e for e in errors), (case, errors)
        assert any(message.replace("'", "") in e.replace("\\", "") for e in errors), (case, errors)
        assert at.button(key="train_start").disabled, case
        forged = at.button(key="train_start")
        forged.proto.disabled = False  # a forged client message: a click on the disabled button
        forged.click().run()
        assert not at.exception
        assert not [p for p in runs.iterdir() if p.is_dir()], f"{case}: a run directory was created"
    assert snapshot(tmp_path) == before, "nothing is written for a refused upload"
    # The page keeps working: a good file is accepted.
    at.file_uploader(key="w_train_upload").set_value(("good.txt", GOOD, "text/plain")).run()
    assert not at.exception and not at.error
    assert any(m.value == "60" for m in at.metric) and not at.button(key="train_start").disabled


# --------------------------------------------------------------------------- label uploads (Latent map)

LABEL_BAD = {
    "empty": (b"", "empty"),
    "binary": (b"\x00\x01\x02PK" * 300, "binary"),
    "non_utf8": ("text,topic\n" + "café crème,a\n" * 5).encode("latin-1"),
    "header_only": (b"text,topic\n", "no rows"),
    "ragged_rows": (b"text,topic\nthe cat sat .,a\nthe dog ran .,b,extra\n", "fields"),
    "sentence_1mb": (b"text,topic\n" + b"w" * ONE_MB + b",a\n", "cannot be read"),
    "too_wide": (",".join(f"c{i}" for i in range(5000)).encode() + b"\n" + b"x," * 4999 + b"x\n", "at most 1,000"),
    "over_cap": (b"text,topic\n" + b"the cat sat .,a\n" * 200, "limit"),
}


def test_latent_map_label_upload_refuses_bad_files(open_app, tmp_path, monkeypatch):
    monkeypatch.setattr(analysis, "UPLOAD_MAX_BYTES", 2 * ONE_MB)  # the label cap, small for the over-cap case
    at = open_app("app_pages/latent_map.py")
    assert not at.exception
    before = snapshot(tmp_path)
    for case, spec in LABEL_BAD.items():
        data, message = spec if isinstance(spec, tuple) else (spec, "UTF-8")
        if case == "over_cap":
            monkeypatch.setattr(analysis, "UPLOAD_MAX_BYTES", len(data) - 1)
        at.file_uploader(key="w_map_upload").set_value((f"{case}.csv", data, "text/csv")).run()
        assert not at.exception, (case, [e.value for e in at.exception])
        errors = [html.unescape(e.value) for e in at.error]  # messages are escaped for markdown
        assert any(message in e for e in errors), (case, errors)
        if case == "too_wide":  # issue 19.5: no 5,000-option column picker is sent to the browser
            assert not _has_selectbox(at, "w_map_upload_text")
    assert snapshot(tmp_path) == before, "nothing is written for a refused label file"


def _has_selectbox(at, key: str) -> bool:
    return any(getattr(s, "key", None) == key for s in at.selectbox)


# ----------------------------------------------------------------------------- issue 19.5: bounded uploads

WIDE_ROW = ",".join(["x"] * 1_000_000)


def test_a_csv_with_a_million_columns_is_refused_early_and_offers_no_column_picker():
    """Issue 19.5: 50 MB with 10^6 columns cost +2.5 GB and 102 s; it is refused on its first row."""
    import time

    data = ("text," + WIDE_ROW + "\n" + ("the cat sat ," + WIDE_ROW + "\n") * 24).encode()
    assert len(data) <= jobs.DEFAULT_UPLOAD_MB * ONE_MB
    t0 = time.perf_counter()
    texts, err = jobs.validate_upload("wide.csv", data)
    assert texts is None and "1,000,001 columns" in err and f"at most {MAX_COLUMNS:,}" in err
    assert time.perf_counter() - t0 < 10, "the width must be refused before the rows are parsed"
    assert len(err) < 500, "the message must not list a million column names"
    assert jobs.upload_columns("wide.csv", data) == []  # no 10^6-option selectbox


def test_a_jsonl_with_too_many_keys_is_refused():
    keys = {f"k{i}": 1 for i in range(MAX_COLUMNS + 5)}
    data = "\n".join(json.dumps({"text": f"a bird {i} sang .", **keys}) for i in range(60)).encode()
    texts, err = jobs.validate_upload("wide.jsonl", data)
    assert texts is None and "columns" in err
    assert jobs.upload_columns("wide.jsonl", data) == []
    # keys spread over lines add up too
    spread = "\n".join(json.dumps({"text": f"a bird {i} sang .", f"k{i}": 1}) for i in range(MAX_COLUMNS + 5))
    assert "columns" in jobs.validate_upload("spread.jsonl", spread.encode())[1]


def test_rows_and_label_cells_are_bounded(monkeypatch):
    monkeypatch.setattr(jobs, "MAX_UPLOAD_ROWS", 100)
    many = "\n".join(f"the cat {i} sat ." for i in range(101)).encode()
    texts, err = jobs.validate_upload("many.txt", many)
    assert texts is None and "more than 100 rows" in err
    csv_many = ("text,label\n" + "\n".join(f"the dog {i} ran .,a" for i in range(101))).encode()
    assert "more than 100 rows" in jobs.validate_upload("many.csv", csv_many)[1]
    assert jobs.validate_upload("ok.txt", b"\n".join([b"the cat sat ."] * 100))[1] is None
    long_label = ("text,label\n" + "\n".join(f"the dog {i} ran .,{'y' * (MAX_LABEL_CHARS + 1)}"
                                              for i in range(60))).encode()
    texts, err = jobs.validate_upload("long.csv", long_label)
    assert texts is None and "label column 'label'" in err and f"at most {MAX_LABEL_CHARS:,}" in err
    with pytest.raises(CorpusError, match="columns"):  # the reader itself, for files on the server too
        parse_text(("text," + ",".join(f"c{i}" for i in range(MAX_COLUMNS)) + "\nx" + "," * MAX_COLUMNS).encode(),
                   "csv")
