"""Tests for workbench.data: the real data sets (when WORKBENCH_DATA is set), the built-in
sample, where data comes from, every DataError case, and load_file round trips."""

from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from datasets import Dataset

import workbench.data.sources as sources
from workbench.data import (
    STSB_LANGUAGES,
    DataError,
    SampleDataWarning,
    data_dir,
    hub_enabled,
    load_caption_pairs,
    load_file,
    load_nli_pairs,
    load_nli_triplets,
    load_sentences,
    load_stsb,
    load_wikisplit_pairs,
    read_records,
    sample_file,
    source,
)


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach for the network."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@pytest.fixture
def no_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """Neither WORKBENCH_DATA nor the hub: only the built-in sample is left."""
    monkeypatch.delenv("WORKBENCH_DATA", raising=False)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def tsv(path: Path, header: list[str], *rows: list[str]) -> Path:
    return write(path, "\n".join("\t".join(r) for r in [header, *rows]) + "\n")


def raw_rows(path: Path) -> list[list[str]]:
    """An independent reading of a shared TSV: split lines on tabs, drop the header."""
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()[1:]]


# --- the real data sets (skip without WORKBENCH_DATA) -------------------------------------


@pytest.mark.parametrize(
    ("split", "rows"), [("test", 1379), ("dev", 1500), ("validation", 1500), ("train", 5749)]
)
def test_stsb_row_counts(stsb_dir: Path, split: str, rows: int) -> None:
    ds = load_stsb(split, path=stsb_dir)
    assert ds.num_rows == rows
    assert ds.column_names == ["sentence1", "sentence2", "score"]
    assert 0.0 <= min(ds["score"]) and max(ds["score"]) <= 1.0


def test_stsb_first_row_and_scale(stsb_dir: Path) -> None:
    ds = load_stsb("test", path=stsb_dir)
    assert ds[0] == {
        "sentence1": "A girl is styling her hair.",
        "sentence2": "A girl is brushing her hair.",
        "score": 0.5,
    }
    raw = raw_rows(stsb_dir / "stsb-en-test.tsv")
    assert list(ds["score"]) == pytest.approx([float(r[2]) / 5 for r in raw])
    assert min(ds["score"]) == 0.0 and max(ds["score"]) == 1.0


def test_stsb_row_beginning_with_a_quote_is_intact(stsb_dir: Path) -> None:
    path = stsb_dir / "stsb-en-test.tsv"
    # The trap being guarded against: default CSV quoting merges rows (1,119 instead of 1,379).
    with path.open(encoding="utf-8", newline="") as f:
        assert sum(1 for _ in csv.reader(f, delimiter="\t")) - 1 == 1119
    ds = load_stsb("test", path=path)
    quoted = [i for i, s in enumerate(ds["sentence1"]) if s.startswith('"')]
    assert quoted, "STS-B test has sentences that begin with a quote"
    raw = raw_rows(path)
    for i in quoted:
        assert [ds[i]["sentence1"], ds[i]["sentence2"]] == raw[i][:2]
    row = ds[891]  # line 893 of the file
    assert row["sentence1"].startswith('"We believe we are fully prepared to roll out the [touch-screen]')
    assert row["sentence2"].startswith('"We believe we are fully prepared to roll out the revised Diebold')
    assert row["score"] == pytest.approx(3.75 / 5)


def test_stsb_from_the_data_dir_setting(data_dir: Path, stsb_dir: Path) -> None:
    assert sources.data_dir() == data_dir
    ds = load_stsb("test")  # WORKBENCH_DATA, no path
    src = source(ds)
    assert src.kind == "file" and not src.is_sample
    assert str(src) == f"STS-B en test from {stsb_dir / 'stsb-en-test.tsv'} (1379 pairs)"
    assert source(ds.shuffle(seed=0).select(range(10))) == src  # provenance follows the data


@pytest.mark.parametrize("lang", STSB_LANGUAGES[1:])
def test_stsb_translated_test_sets(stsb_dir: Path, lang: str) -> None:
    ds = load_stsb("test", lang=lang, path=stsb_dir)
    assert ds.num_rows == 1379
    assert list(ds["score"]) == pytest.approx(list(load_stsb("test", path=stsb_dir)["score"]))


@pytest.mark.parametrize(("split", "rows"), [("dev", 3152), ("test", 3163), ("all", 3152 + 3163)])
def test_snli_triplets(data_dir: Path, split: str, rows: int) -> None:
    if not (data_dir / "snli").is_dir():
        pytest.skip(f"no snli/ under WORKBENCH_DATA ({data_dir})")
    ds = load_nli_triplets(split, path=data_dir)
    assert ds.num_rows == rows
    assert ds.column_names == ["anchor", "positive", "negative"]
    first = raw_rows(data_dir / "snli" / f"snli-{'dev' if split == 'all' else split}-triplets.tsv")[0]
    assert ds[0] == dict(zip(["anchor", "positive", "negative"], first, strict=True))
    if split == "dev":
        assert ds[0]["negative"] == "The men are fighting outside a deli."


def test_snli_pairs_drop_unlabelled(data_dir: Path) -> None:
    if not (data_dir / "snli").is_dir():
        pytest.skip(f"no snli/ under WORKBENCH_DATA ({data_dir})")
    raw = raw_rows(data_dir / "snli" / "snli-dev-pairs.tsv")
    ds = load_nli_pairs("dev", path=data_dir)
    assert ds.num_rows == sum(r[2] != "-" for r in raw) < 9835
    names = ds.features["label"].names
    assert [names[i] for i in ds["label"]] == [r[2] for r in raw if r[2] != "-"]


@pytest.mark.parametrize(("split", "images"), [("train", 27814), ("val", 972), ("test", 957)])
def test_caption_pairs(data_dir: Path, split: str, images: int) -> None:
    if not (data_dir / "multi30k-captions").is_dir():
        pytest.skip(f"no multi30k-captions/ under WORKBENCH_DATA ({data_dir})")
    ds = load_caption_pairs(split, path=data_dir, pairs_per_image=2)
    assert ds.num_rows == 2 * images
    if split == "val":
        raw = raw_rows(data_dir / "multi30k-captions" / "captions-val.tsv")
        image_of = {c: r[0] for r in raw for c in r[1:]}
        assert all(
            image_of[a] == image_of[p] and a != p for a, p in zip(ds["anchor"], ds["positive"], strict=True)
        )
        assert ds[0] == {"anchor": raw[0][1], "positive": raw[0][2]}


def test_wikisplit_pairs(data_dir: Path, tmp_path: Path) -> None:
    if not (data_dir / "wikipedia-sentences" / "raw").is_dir():
        pytest.skip(f"no wikipedia-sentences/raw/ under WORKBENCH_DATA ({data_dir})")
    ds = load_wikisplit_pairs("all", path=data_dir)
    assert ds.num_rows == 15000 and load_wikisplit_pairs("tune", path=data_dir).num_rows == 5000
    # quoting off: the tokenised '' quotes and leading ' of WikiSplit stay as they are
    raw = (data_dir / "wikipedia-sentences" / "raw" / "wiki-split-tune.tsv").read_text(encoding="utf-8").splitlines()
    complex_, split = raw[0].split("\t")
    assert ds[0]["anchor"] == complex_ and "<::::>" not in ds[0]["positive"]
    assert ds[0]["positive"] == " ".join(p.strip() for p in split.split("<::::>"))
    bad = tmp_path / "bad.tsv"
    bad.write_text("one sentence only\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.tsv, line 1: expected 'complex sentence<TAB>split sentences'"):
        load_wikisplit_pairs("tune", path=bad)
    with pytest.raises(ValueError, match="unknown WikiSplit split 'train'"):
        load_wikisplit_pairs("train")


def test_sentences(data_dir: Path) -> None:
    needed = ["wikipedia-sentences", "misc-english-sentences", "multi30k-captions"]
    if not all((data_dir / n).is_dir() for n in needed):
        pytest.skip(f"sentence sets missing under WORKBENCH_DATA ({data_dir})")
    ds = load_sentences(path=data_dir)
    assert len(set(ds["sentence"])) == ds.num_rows > 200_000
    small = load_sentences(("wikipedia",), limit=1000, seed=3, path=data_dir)
    assert small.num_rows == 1000
    assert list(small["sentence"]) == list(
        load_sentences(("wikipedia",), limit=1000, seed=3, path=data_dir)["sentence"]
    )
    ordered = load_sentences(("wikipedia",), limit=2, seed=None, path=data_dir)
    assert list(ordered["sentence"]) == [
        r[1] for r in raw_rows(data_dir / "wikipedia-sentences" / "wikipedia-sentences.tsv")[:2]
    ]


# --- the built-in sample ------------------------------------------------------------------


def test_sample_stsb_when_no_data(no_data: None) -> None:
    assert data_dir() is None and not hub_enabled()
    with pytest.warns(
        SampleDataWarning,
        match=r"SAMPLE of 64 pairs: a smoke-test sample, not a benchmark; set WORKBENCH_DATA=",
    ):
        ds = load_stsb("test")
    src = source(ds)
    assert src.is_sample and src.kind == "sample"
    assert "built-in SAMPLE" in str(src) and src.location == str(sample_file("sts"))
    assert ds.column_names == ["sentence1", "sentence2", "score"]
    assert all(0.0 <= s <= 1.0 for s in ds["score"]) and len(set(ds["score"])) > 10
    assert '"Keep the change," the driver said.' in ds["sentence1"]  # quoting is off in the sample too


@pytest.mark.parametrize(
    ("load", "columns"),
    [
        (lambda: load_stsb("dev"), ["sentence1", "sentence2", "score"]),
        (lambda: load_nli_triplets("all"), ["anchor", "positive", "negative"]),
        (lambda: load_nli_pairs("test"), ["premise", "hypothesis", "label"]),
        (lambda: load_caption_pairs("val"), ["anchor", "positive"]),
        (lambda: load_sentences(), ["sentence"]),
        (lambda: load_wikisplit_pairs(), ["anchor", "positive"]),
    ],
)
def test_every_loader_falls_back_to_the_sample(no_data: None, load, columns: list[str]) -> None:
    with pytest.warns(SampleDataWarning, match="not a benchmark"):
        ds = load()
    assert ds.column_names == columns and ds.num_rows >= 20
    assert source(ds).is_sample


def test_sample_files_are_well_formed() -> None:
    sts = read_records(sample_file("sts"), ["sentence1", "sentence2", "score"])
    assert 40 <= len(sts) <= 80 and all(0 <= float(s) <= 5 for s in sts.data["score"])
    assert len(read_records(sample_file("nli-triplets"), ["anchor", "positive", "negative"])) >= 24
    readme = (sample_file("sts").parent / "README.md").read_text(encoding="utf-8")
    assert "SAMPLE" in readme and "not a benchmark" in readme


# --- where data comes from ----------------------------------------------------------------


def test_data_dir_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("WORKBENCH_DATA", raising=False)
    assert data_dir() is None
    monkeypatch.setenv("WORKBENCH_DATA", str(tmp_path))
    assert data_dir() == tmp_path
    monkeypatch.setenv("WORKBENCH_DATA", str(tmp_path / "nope"))
    with pytest.raises(DataError, match="WORKBENCH_DATA=.*nope is not a folder"):
        data_dir()


def test_data_dir_with_own_stsb(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tsv(
        tmp_path / "stsb" / "stsb-en-dev.tsv", ["sentence1", "sentence2", "score"], ['"A" b', "c", "2.5"]
    )
    monkeypatch.setenv("WORKBENCH_DATA", str(tmp_path))
    ds = load_stsb("validation")
    assert ds[0] == {"sentence1": '"A" b', "sentence2": "c", "score": 0.5}
    assert str(source(ds)) == f"STS-B en dev from {path} (1 pairs)"


def test_data_dir_without_the_set_falls_through(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WORKBENCH_DATA", str(tmp_path))
    with pytest.warns(SampleDataWarning), pytest.warns(UserWarning, match=r"has no stsb/stsb-en-test.tsv"):
        ds = load_stsb("test")
    assert source(ds).is_sample


def test_explicit_path_file_or_folder(tmp_path: Path) -> None:
    path = tsv(
        tmp_path / "snli" / "snli-dev-triplets.tsv", ["anchor", "positive", "negative"], ["a", "p", "n"]
    )
    for given in (path, tmp_path, tmp_path / "snli"):
        assert load_nli_triplets("dev", path=given)[0] == {"anchor": "a", "positive": "p", "negative": "n"}
    with pytest.raises(DataError, match=r"has no snli/snli-test-triplets.tsv"):
        load_nli_triplets("all", path=tmp_path)
    with pytest.raises(DataError, match=r"missing.*no such file or folder"):
        load_stsb(path=tmp_path / "missing")


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown STS-B language 'xx'"):
        load_stsb(lang="xx")
    with pytest.raises(ValueError, match="test split only"):
        load_stsb("train", lang="de")
    with pytest.raises(ValueError, match="unknown split"):
        load_nli_triplets("nope")
    with pytest.raises(ValueError, match="unknown sentence sources"):
        load_sentences(("poems",))


def test_hub_offline_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not hub_enabled()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    assert not hub_enabled()
    monkeypatch.delenv("HF_DATASETS_OFFLINE")
    assert hub_enabled()


def test_hub_unreachable_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    start = time.perf_counter()
    assert not sources.hub_reachable(timeout=2.0)
    assert time.perf_counter() - start < 2.5


def test_hub_used_when_online(monkeypatch: pytest.MonkeyPatch, no_data: None) -> None:
    import datasets

    calls: list[tuple] = []

    def fake_load_dataset(*args, **kwargs):
        calls.append((args, kwargs))
        return Dataset.from_dict({"sentence1": ["a"], "sentence2": ["b"], "score": [0.25], "extra": [1]})

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(sources, "hub_reachable", lambda timeout=3.0: True)
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    ds = load_stsb("dev")
    assert calls == [(("sentence-transformers/stsb",), {"split": "validation"})]
    assert ds.column_names == ["sentence1", "sentence2", "score"] and ds[0]["score"] == 0.25
    src = source(ds)
    assert src.kind == "hub" and str(src) == "STS-B en dev from the hub (sentence-transformers/stsb, 1 pairs)"


def test_hub_failure_falls_through(monkeypatch: pytest.MonkeyPatch, no_data: None) -> None:
    import datasets

    def broken(*args, **kwargs):
        raise ConnectionError("no route to host")

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setattr(sources, "hub_reachable", lambda timeout=3.0: True)
    monkeypatch.setattr(datasets, "load_dataset", broken)
    with pytest.warns(UserWarning) as record:
        ds = load_nli_triplets("dev")
    messages = [str(w.message) for w in record]
    assert any("loading from the hub failed (ConnectionError: no route to host)" in m for m in messages)
    assert source(ds).is_sample


def test_offline_never_touches_the_hub(monkeypatch: pytest.MonkeyPatch, no_data: None) -> None:
    import datasets

    def forbidden(*args, **kwargs):
        raise AssertionError("the hub was called while HF_HUB_OFFLINE=1")

    monkeypatch.setattr(sources, "hub_reachable", forbidden)
    monkeypatch.setattr(datasets, "load_dataset", forbidden)
    with pytest.warns(SampleDataWarning):
        load_sentences(limit=5)


# --- malformed files: DataError names the file and the line ---------------------------------

STS_HEADER = ["sentence1", "sentence2", "score"]


def assert_data_error(path: Path, match: str, load=lambda p: load_stsb(path=p)) -> DataError:
    with pytest.raises(DataError, match=match) as info:
        load(path)
    message = str(info.value)
    assert str(path) in message, message
    assert info.value.__cause__ is None, "re-raised without a deep chain"
    return info.value


def test_wrong_number_of_fields(tmp_path: Path) -> None:
    path = tsv(tmp_path / "s.tsv", STS_HEADER, ["a", "b", "1.0"], ["a", "b"])
    assert_data_error(
        path, r"s.tsv, line 3: expected 3 tab-separated fields \(sentence1, sentence2, score\), found 2"
    )


def test_extra_field(tmp_path: Path) -> None:
    path = tsv(tmp_path / "s.tsv", STS_HEADER, ["a", "b", "1.0", "extra"])
    assert_data_error(path, r"line 2: expected 3 tab-separated fields .* found 4")


@pytest.mark.parametrize(
    ("score", "match"),
    [
        ("high", r"line 3: score 'high' is not a number"),
        ("nan", r"line 3: score is 'nan'; it must be a finite number in 0..5"),
        ("inf", r"line 3: score is 'inf'"),
        ("5.5", r"line 3: score 5.5 is outside 0..5"),
        ("-0.1", r"line 3: score -0.1 is outside 0..5"),
    ],
)
def test_bad_scores(tmp_path: Path, score: str, match: str) -> None:
    path = tsv(tmp_path / "s.tsv", STS_HEADER, ["a", "b", "5"], ["a", "b", score])
    assert_data_error(path, match)


def test_missing_column_names_it_and_lists_found(tmp_path: Path) -> None:
    path = tsv(tmp_path / "s.tsv", ["sentence1", "sentence_2", "score"], ["a", "b", "1"])
    assert_data_error(
        path,
        r"line 1 \(header\): missing column 'sentence2'; columns found: 'sentence1', 'sentence_2', 'score'",
    )


def test_empty_sentence(tmp_path: Path) -> None:
    path = tsv(tmp_path / "s.tsv", STS_HEADER, ["a", "b", "1"], ["a", " ", "1"])
    assert_data_error(path, r"line 3: sentence2 is empty")


def test_nonexistent_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.tsv"
    assert_data_error(path, r"absent.tsv: no such file", load=load_file)


def test_folder_instead_of_file(tmp_path: Path) -> None:
    path = tmp_path / "folder.tsv"
    path.mkdir()
    assert_data_error(path, r"is a folder, not a file", load=load_file)


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tsv(tmp_path / "locked.tsv", STS_HEADER, ["a", "b", "1"])

    def denied(self: Path) -> bytes:
        # chmod 0 does not stop root (CI containers), so the refusal is simulated
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", denied)
    assert_data_error(path, r"locked.tsv: cannot read the file: Permission denied")


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path = write(tmp_path / "empty.tsv", text)
    assert_data_error(path, r"empty.tsv: the file is empty")


def test_header_only(tmp_path: Path) -> None:
    path = tsv(tmp_path / "h.tsv", STS_HEADER)
    assert_data_error(path, r"h.tsv: no data rows")


def test_unsupported_extension(tmp_path: Path) -> None:
    path = write(tmp_path / "pairs.xlsx", "x")
    assert_data_error(path, r"pairs.xlsx: unsupported file extension '.xlsx'", load=load_file)
    with pytest.raises(DataError, match="unsupported format 'yaml'"):
        load_file(path, format="yaml")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.tsv"
    path.write_bytes("sentence1\tsentence2\tscore\na\tb\t1\ncaf\xe9\tb\t2\n".encode("latin-1"))
    assert_data_error(path, r"latin.tsv, line 3: not valid UTF-8 \(byte 0xe9\)")


def test_duplicate_header(tmp_path: Path) -> None:
    path = tsv(tmp_path / "d.tsv", ["text", "text"], ["a", "b"])
    assert_data_error(path, r"line 1: column 'text' appears twice", load=load_file)


def test_bad_nli_label(tmp_path: Path) -> None:
    path = tsv(
        tmp_path / "p.tsv", ["premise", "hypothesis", "label"], ["a", "b", "entailment"], ["a", "c", "maybe"]
    )
    assert_data_error(
        path, r"p.tsv, line 3: label 'maybe' is not one of", load=lambda p: load_nli_pairs(path=p)
    )


def test_bad_jsonl(tmp_path: Path) -> None:
    path = write(tmp_path / "x.jsonl", '{"text": "a"}\n{"text": \n')
    assert_data_error(path, r"x.jsonl, line 2: invalid JSON", load=load_file)
    path = write(tmp_path / "y.jsonl", '{"text": "a"}\n\n["b"]\n')
    assert_data_error(path, r"y.jsonl, line 3: expected a JSON object, found list", load=load_file)


def test_bad_json(tmp_path: Path) -> None:
    path = write(tmp_path / "x.json", '[\n{"text": "a"},\n{"text": }\n]')
    assert_data_error(path, r"x.json, line 3: invalid JSON", load=load_file)


def test_bad_csv_quoting(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv", 'text,score\n"fine",1\n"broken"x,2\n')
    assert_data_error(path, r"x.csv, line 3: malformed CSV", load=load_file)


def test_not_parquet(tmp_path: Path) -> None:
    path = write(tmp_path / "x.parquet", "not parquet at all")
    assert_data_error(path, r"x.parquet: not a readable Parquet file", load=load_file)


def test_data_error_is_a_value_error() -> None:
    assert issubclass(DataError, ValueError)


# --- load_file round trips ----------------------------------------------------------------

ROWS = {"text": ['"Hello," she said.', "a, b and c", "plain"], "score": [1.5, 0.0, 4.0], "n": [1, 2, 3]}


def test_load_file_tsv_keeps_quotes_and_infers_types(tmp_path: Path) -> None:
    lines = ["text\tscore\tn"] + [f"{t}\t{s}\t{n}" for t, s, n in zip(*ROWS.values(), strict=True)]
    path = write(tmp_path / "x.tsv", "\n".join(lines) + "\n")
    ds = load_file(path, columns=["text", "score"])
    assert ds.to_dict() == ROWS
    assert ds.features["n"].dtype == "int64" and ds.features["score"].dtype == "float64"
    assert source(ds).kind == "file" and str(path) in str(source(ds))


def test_load_file_csv_uses_csv_quoting(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(ROWS)
        writer.writerows(zip(*ROWS.values(), strict=True))
    assert load_file(path).to_dict() == ROWS


def test_load_file_jsonl_json_parquet(tmp_path: Path) -> None:
    records = [dict(zip(ROWS, values, strict=True)) for values in zip(*ROWS.values(), strict=True)]
    jsonl = write(tmp_path / "x.jsonl", "\n".join(json.dumps(r) for r in records) + "\n")
    as_records = write(tmp_path / "r.json", json.dumps(records))
    as_columns = write(tmp_path / "c.json", json.dumps(ROWS))
    parquet = tmp_path / "x.parquet"
    pq.write_table(pa.table(ROWS), parquet)
    for path in (jsonl, as_records, as_columns, parquet):
        assert load_file(path, columns=["text"]).to_dict() == ROWS, path
    with pytest.raises(
        DataError, match=r"x.parquet: missing column 'label'; columns found: 'text', 'score', 'n'"
    ):
        load_file(parquet, columns=["label"])


def test_load_file_format_override(tmp_path: Path) -> None:
    path = write(tmp_path / "pairs.txt", 'a\tb\n"x\ty"\n')
    assert load_file(path, format="tsv").to_dict() == {"a": ['"x'], "b": ['y"']}


def test_crlf_and_bom(tmp_path: Path) -> None:
    path = tmp_path / "win.tsv"
    path.write_bytes(b"\xef\xbb\xbfsentence1\tsentence2\tscore\r\na\tb\t5\r\n")
    assert load_stsb(path=path)[0] == {"sentence1": "a", "sentence2": "b", "score": 1.0}


# --- pairs and sentences from small files --------------------------------------------------


def test_caption_pairs_are_distinct_and_round_major(tmp_path: Path) -> None:
    header = ["image"] + [f"caption{i}" for i in range(1, 6)]
    path = tsv(
        tmp_path / "c.tsv", header, ["x"] + [f"x{i}" for i in range(5)], ["y"] + [f"y{i}" for i in range(5)]
    )
    ds = load_caption_pairs(path=path, pairs_per_image=10)
    pairs = list(zip(ds["anchor"], ds["positive"], strict=True))
    assert len(pairs) == 20 == len({frozenset(p) for p in pairs})
    assert all(a[0] == p[0] and a != p for a, p in pairs)
    assert pairs[:4] == [("x0", "x1"), ("y0", "y1"), ("x1", "x2"), ("y1", "y2")]
    one = load_caption_pairs(path=path, pairs_per_image=1)
    assert list(one["anchor"]) == ["x0", "y0"] and list(one["positive"]) == ["x1", "y1"]
    assert pairs == list(zip(*load_caption_pairs(path=path, pairs_per_image=10)[:].values(), strict=True))


def test_sentences_dedup_limit_seed(tmp_path: Path) -> None:
    path = tsv(tmp_path / "s.tsv", ["sentence"], *[[f"s{i % 7}"] for i in range(20)])
    assert list(load_sentences(path=path, seed=None)["sentence"]) == [f"s{i}" for i in range(7)]
    shuffled = list(load_sentences(path=path, seed=1)["sentence"])
    assert sorted(shuffled) == [f"s{i}" for i in range(7)] and shuffled != sorted(shuffled)
    assert list(load_sentences(path=path, seed=1, limit=3)["sentence"]) == shuffled[:3]


def test_sts_scores_are_divided_by_five(tmp_path: Path) -> None:
    path = tsv(tmp_path / "s.tsv", STS_HEADER, *[["a", "b", s] for s in ("0", "1.25", "5")])
    assert list(load_stsb(path=path)["score"]) == [0.0, 0.25, 1.0]
    assert all(math.isfinite(s) for s in load_stsb(path=path)["score"])
