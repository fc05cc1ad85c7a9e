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


# ------------------------------------------------------------- issue 20.7: encodings, bad lines, no text column

SENTENCES = [f"the cat {i} sat on the mat ." for i in range(60)]
CSV_TEXT = "text,label\n" + "\n".join(f"{s},{'ab'[i % 2]}" for i, s in enumerate(SENTENCES)) + "\n"
JSONL_TEXT = "\n".join(json.dumps({"text": s, "label": "ab"[i % 2]}) for i, s in enumerate(SENTENCES)) + "\n"
BOM_ENCODINGS = {  # codec that writes the byte-order mark itself, or (codec, mark) -> what the user is told
    "utf-16": "UTF-16 LE",
    "utf-32": "UTF-32 LE",
    ("utf-16-be", b"\xfe\xff"): "UTF-16 BE",
    ("utf-32-be", b"\x00\x00\xfe\xff"): "UTF-32 BE",
}


def _encode(text: str, enc) -> bytes:
    if isinstance(enc, tuple):
        codec, bom = enc
        return bom + text.encode(codec)
    return text.encode(enc)


@pytest.mark.parametrize("enc", list(BOM_ENCODINGS), ids=lambda e: BOM_ENCODINGS[e])
@pytest.mark.parametrize("fmt, text", [("txt", "\n".join(SENTENCES)), ("csv", CSV_TEXT), ("jsonl", JSONL_TEXT)])
def test_utf16_and_utf32_with_a_byte_order_mark_are_read_as_text(enc, fmt, text):
    from vae_core.corpus import text_encoding

    data = _encode(text, enc)
    texts, err = jobs.validate_upload(f"f.{fmt}", data)
    assert err is None, err
    assert texts.sentences == tuple(SENTENCES)
    assert texts.sentences == parse_text(text.encode(), fmt).sentences  # the same as the UTF-8 file
    if fmt != "txt":
        assert texts.labels["label"][:2] == ("a", "b")
        assert jobs.upload_columns(f"f.{fmt}", data) == ["text", "label"]  # the column picker reads it too
    assert text_encoding(data)[1] == BOM_ENCODINGS[enc]


def test_binary_is_still_refused_even_behind_a_utf16_byte_order_mark():
    import random

    noise = random.Random(0).randbytes(20_000)
    zip_like = b"\x00\x01\x02PK\x03\x04" * 200  # decodes as UTF-16 (no surrogates), to control characters
    for data in (b"\xff\xfe" + noise, b"\xfe\xff" + noise, b"\xff\xfe\x00\x00" + noise, b"\xff\xfe" + zip_like,
                 b"\xfe\xff" + zip_like):
        texts, err = jobs.validate_upload("f.txt", data)
        assert texts is None and ("binary" in err or "not UTF" in err), err
    # UTF-16 without a byte-order mark has NUL bytes: refused as binary, with the way out named
    texts, err = jobs.validate_upload("f.txt", "\n".join(SENTENCES).encode("utf-16-le"))
    assert texts is None and "binary" in err and "byte-order mark" in err


def test_csv_header_peek_reads_utf16():
    from vae_core.subsets import csv_header

    assert csv_header(_encode(CSV_TEXT, "utf-16")) == ["text", "label"]
    assert csv_header(CSV_TEXT.encode("utf-8-sig")) == ["text", "label"]


JSON_BAD_LINES = {  # line 7 (a good file otherwise) -> what the message says about it
    "unterminated": ('{"text": "the dog ran .', "unterminated string"),
    "bare_key": ('{"text": "the dog ran .", label: 3}', "property name"),
    "trailing": ('{"text": "the dog ran ."} x', "extra data"),
    "truncated": ('{"text": "the dog', "unterminated string"),
}


@pytest.mark.parametrize("case", list(JSON_BAD_LINES))
def test_jsonl_with_one_bad_line_names_the_line_and_what_is_wrong(case):
    bad, says = JSON_BAD_LINES[case]
    lines = JSONL_TEXT.splitlines()
    lines[6] = bad
    texts, err = jobs.validate_upload("x.jsonl", "\n".join(lines).encode())
    assert texts is None
    assert err.startswith("x.jsonl line 7 is not valid JSON (") and says in err.lower(), err
    assert "column " in err and "fix or remove that line" in err, err
    assert not err.rstrip(")").endswith((" at", ":")), "the message is whole, not cut off"


def test_jsonl_bad_line_message_quotes_a_short_excerpt():
    lines = JSONL_TEXT.splitlines()
    lines[6] = '{"text": "' + "w" * 5000 + '", oops}'
    err = jobs.validate_upload("x.jsonl", "\n".join(lines).encode())[1]
    assert "line 7" in err and "oops" in err and len(err) < 400, err


NUMBERS_CSV = b"a,b\n" + b"".join(f"{i},{i * 2}\n".encode() for i in range(60))


def test_a_numeric_column_is_never_read_as_sentences():
    texts, err = jobs.validate_upload("nums.csv", NUMBERS_CSV)
    assert texts is None and "no text column (columns: a, b)" in err
    for column in ("a", "b"):  # named explicitly (the CLI's --text-column, the Train page's picker): still refused
        texts, err = jobs.validate_upload("nums.csv", NUMBERS_CSV, column)
        assert texts is None and "holds only numbers" in err and "(columns: a, b)" in err, err
    with pytest.raises(CorpusError, match="holds only numbers"):
        parse_text(b"id,score\n1,0.5\n2,1e3\n3,-4\n", "csv", text_column="score")
    # a text column with some numbers among sentences is text
    assert len(parse_text(b"text\n42\nthe cat sat .\n", "csv")) == 2


@pytest.mark.parametrize("page, key", [("app_pages/latent_map.py", "map"), ("app_pages/disentanglement.py", "dis")])
def test_label_uploaders_do_not_use_a_numeric_column_as_text(open_app, page, key):
    at = open_app(page)
    assert not at.exception
    at.file_uploader(key=f"w_{key}_upload").set_value(("nums.csv", NUMBERS_CSV, "text/csv")).run()
    assert not at.exception, [e.value for e in at.exception]
    warnings = [html.unescape(w.value) for w in at.warning]
    assert any("no text column (columns: a, b)" in w for w in warnings), warnings
    picker = at.selectbox(key=f"w_{key}_upload_text")
    assert picker.value is None, "no column is chosen for the user"
    radio = [r for r in at.radio if r.key and r.key.endswith("_source")]
    assert all(r.value != "upload" for r in radio), "the numbers are not offered as sentences"
    picker.set_value("a").run()  # chosen explicitly: refused, with why
    assert not at.exception
    errors = [html.unescape(e.value) for e in at.error]
    assert any("holds only numbers" in e for e in errors), errors


def test_label_uploader_reads_utf16_and_says_so(open_app):
    at = open_app("app_pages/latent_map.py")
    at.file_uploader(key="w_map_upload").set_value(("mine.csv", _encode(CSV_TEXT, "utf-16"), "text/csv")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.selectbox(key="w_map_upload_text").value == "text"
    assert any("Read as UTF-16 LE" in c.value for c in at.caption)
    assert at.radio(key="w_map_source").value == "upload"


def test_train_page_reads_a_utf16_upload_and_names_the_bad_jsonl_line(open_app):
    at = open_app("app_pages/train.py")
    at.radio(key="train_corpus_source").set_value("upload").run()
    at.file_uploader(key="w_train_upload").set_value(("u16.txt", _encode("\n".join(SENTENCES), "utf-16"),
                                                      "text/plain")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert any(m.value == "60" for m in at.metric)
    assert any("Read as UTF-16 LE" in c.value for c in at.caption)
    lines = JSONL_TEXT.splitlines()
    lines[6] = '{"text": "the dog ran .'
    at.file_uploader(key="w_train_upload").set_value(("bad.jsonl", "\n".join(lines).encode(), "text/plain")).run()
    errors = [html.unescape(e.value).replace("\\", "") for e in at.error]
    assert any("bad.jsonl line 7 is not valid JSON (unterminated string" in e for e in errors), errors
    assert at.button(key="train_start").disabled
