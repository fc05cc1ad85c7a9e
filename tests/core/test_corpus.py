import hashlib
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vae_core.corpus import (
    CorpusError,
    TextSet,
    bucket_batches,
    collate,
    download_ptb,
    encode_sentences,
    load_corpus,
    load_path,
    parse_text,
    read_file,
    split_deterministic,
)
from vae_core.text import EOS_ID, Vocab


def test_txt_reader_skips_blank_lines(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text(" one two \n\n three four\n", encoding="utf-8")
    assert read_file(p).sentences == ("one two", "three four")


def test_csv_reader_text_column_and_labels(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("text,label,topic\nhello world,pos,x\n\"a, b\",neg,y\n", encoding="utf-8")
    ts = read_file(p)
    assert ts.sentences == ("hello world", "a, b")
    assert ts.labels == {"label": ("pos", "neg"), "topic": ("x", "y")}
    ts2 = read_file(p, text_column="topic")
    assert ts2.sentences == ("x", "y") and "text" in ts2.labels


def test_tsv_and_jsonl_readers(tmp_path):
    (tmp_path / "a.tsv").write_text("sentence\tlab\nx y\t1\n", encoding="utf-8")
    assert read_file(tmp_path / "a.tsv").labels == {"lab": ("1",)}
    (tmp_path / "a.jsonl").write_text('{"text": "a b", "y": 1}\n\n{"text": "c", "y": 2}\n', encoding="utf-8")
    ts = read_file(tmp_path / "a.jsonl")
    assert ts.sentences == ("a b", "c") and ts.labels == {"y": ("1", "2")}


@pytest.mark.parametrize(
    "name,data,msg",
    [
        ("e.txt", b"", "empty"),
        ("b.txt", b"\x00\x01\x02binary", "binary"),
        ("l.txt", "café".encode("latin-1"), "not UTF-8"),
        ("c.csv", b"a,b\n1,2\n", "no text column"),
        ("r.csv", b"text,b\nx,1,extra\n", "row 2 has 3 fields"),
        ("j.jsonl", b'{"text": "a"}\n{broken\n', "not valid JSON"),
        ("x.docx", b"abc", "unsupported format"),
        ("w.txt", b"\n\n  \n", "no non-empty lines"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, name, data, msg):
    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(CorpusError, match=msg):
        read_file(p)


def test_named_text_column_missing_lists_columns():
    with pytest.raises(CorpusError, match=r"no column 'body' \(columns: a, b\)"):
        parse_text(b"a,b\n1,2\n", "csv", "x.csv", text_column="body")


def test_size_cap_and_huge_line():
    with pytest.raises(CorpusError, match="limit"):
        parse_text(b"a\n" * 100, "txt", "big.txt", max_bytes=50)
    with pytest.raises(CorpusError, match="characters"):
        parse_text(b"a" * 200_001, "txt", "line.txt")


def test_deterministic_split_covers_everything():
    ts = TextSet(tuple(f"s{i}" for i in range(100)), {"y": tuple(str(i % 3) for i in range(100))})
    a = split_deterministic(ts, seed=1)
    b = split_deterministic(ts, seed=1)
    assert a == b
    allsents = sorted(s for part in a for s in part.sentences)
    assert allsents == sorted(ts.sentences)
    assert len(a[1]) == 5 and len(a[2]) == 5
    for part in a:  # labels stay aligned
        assert all(part.labels["y"][i] == str(int(s[1:]) % 3) for i, s in enumerate(part.sentences))
    with pytest.raises(CorpusError, match="at least 3"):
        split_deterministic(TextSet(("a",)))


def test_directory_with_split_files(tmp_path):
    for split in ("train", "valid", "test"):
        (tmp_path / f"ptb.{split}.txt").write_text(f" {split} one \n {split} two \n", encoding="utf-8")
    c = load_path(tmp_path)
    assert c.train.sentences == ("train one", "train two")
    assert c.valid.sentences[0] == "valid one" and c.test.sentences[0] == "test one"
    with pytest.raises(CorpusError):
        load_path(tmp_path / "nothing")


def test_max_len_cap_counts_cut_sentences():
    v = Vocab.build([["a", "b", "c"]])
    ids, cut = encode_sentences(["a b c", "a", "a b c a b c"], v, max_len=3)
    assert cut == 1
    assert [len(x) for x in ids] == [4, 2, 4]
    assert all(x[-1] == EOS_ID for x in ids)


def test_bucket_batches_cover_once_and_group_lengths():
    lengths = [((i * 7) % 23) + 1 for i in range(1000)]
    batches = bucket_batches(lengths, 32, seed=3)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(1000))
    assert batches == bucket_batches(lengths, 32, seed=3)
    assert batches != bucket_batches(lengths, 32, seed=4)
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 3  # bucketed: similar lengths in a batch
    ordered = bucket_batches(lengths, 32, seed=None)
    assert sorted(i for b in ordered for i in b) == list(range(1000))


def test_collate_pads_with_zero():
    tokens, lengths = collate([[5, 6, 3], [7, 3]])
    assert tokens.tolist() == [[5, 6, 3], [7, 3, 0]]
    assert lengths.tolist() == [3, 2]


def _make_zip(tmp_path, files: dict[str, bytes]):
    z = tmp_path / "ptb.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for n, d in files.items():
            zf.writestr(n, d)
        zf.writestr("__MACOSX/._ptb.train.txt", b"junk")
    return z


def test_ptb_download_checks_sha256_via_file_url(tmp_path):
    files = {f"ptb/ptb.{s}.txt": f" {s} a b \n {s} c \n".encode() for s in ("train", "valid", "test")}
    z = _make_zip(tmp_path, files)
    expected = {n.split("/")[-1]: hashlib.sha256(d).hexdigest() for n, d in files.items()}
    dest = tmp_path / "cache"
    out = download_ptb(url=z.as_uri(), dest=dest, expected=expected)
    assert (out / "ptb.train.txt").read_bytes() == files["ptb/ptb.train.txt"]
    # a second call finds the files and does not download (a broken URL proves it)
    assert download_ptb(url="file:///nonexistent.zip", dest=dest, expected=expected) == dest
    c = load_path(dest)
    assert c.train.sentences == ("train a b", "train c")


def test_ptb_download_refuses_wrong_checksum(tmp_path):
    files = {f"ptb.{s}.txt": b" x \n" for s in ("train", "valid", "test")}
    z = _make_zip(tmp_path, files)
    bad = {n: "0" * 64 for n in files}
    with pytest.raises(CorpusError, match="checksum mismatch"):
        download_ptb(url=z.as_uri(), dest=tmp_path / "c", expected=bad)
    assert not any((tmp_path / "c").glob("ptb.*.txt"))
    with pytest.raises(CorpusError, match="could not download"):
        download_ptb(url=(tmp_path / "missing.zip").as_uri(), dest=tmp_path / "d", expected=bad)


def test_load_corpus_synthetic_has_factors():
    c = load_corpus("synthetic")
    assert c.factors and set(c.factors) <= set(c.train.labels)
    assert len(c.train) + len(c.valid) + len(c.test) >= 20000


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["txt", "csv", "tsv", "jsonl"]))
def test_readers_on_arbitrary_bytes_raise_only_corpus_errors(data, fmt):
    try:
        ts = parse_text(data, fmt, "fuzz")
    except CorpusError:
        return
    assert len(ts) >= 1 and all(isinstance(s, str) and s for s in ts.sentences)
