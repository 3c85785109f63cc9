"""Evaluate on anything: scored pairs from files and data sets, several models side by side.

The numbers are checked against sentence-transformers' EmbeddingSimilarityEvaluator on the same
rows (STS-B dev rows written by these tests as csv, jsonl, parquet, a SICK-like TSV with more
columns than needed, and a datasets folder, each with another score scale); bad input against the
message each case must give (file, row, column), on files written here.
"""

from __future__ import annotations

import csv
import json
import math
import re
import zlib
from pathlib import Path

import numpy as np
import pytest

from workbench.cli import main
from workbench.data import DataError
from workbench.data.pairs import DUPLICATE, EMPTY_SENTENCE, NO_SCORE, NOT_A_NUMBER, ColumnError, load_pairs
from workbench.evaluation import STSEvaluator, compare, format_comparison, long_metrics, metric_table

N_ROWS = 60
FNS = ["cosine", "euclidean", "manhattan", "dot"]
# Torch on one thread: on this busy machine MiniLM encodes ~6x faster so (conftest.one_thread).
pytestmark = pytest.mark.usefixtures("one_thread")

KINDS = [f"{stat}_{fn}" for stat in ("pearson", "spearman") for fn in ("cosine", "manhattan", "euclidean", "dot", "max")]


# ----- test data: STS-B dev rows, written in the formats people have ---------------------------------------------


@pytest.fixture(scope="module")
def rows(stsb_dir: Path) -> list[tuple[str, str, float]]:
    """STS-B dev rows (read here with the csv module, quoting off), no pair twice: the first 20 that hold a
    quote character (TSV quoting off is then tested), then the first others, in file order."""
    with open(stsb_dir / "stsb-en-dev.tsv", encoding="utf-8", newline="") as fh:
        every = [(r["sentence1"], r["sentence2"], float(r["score"]))
                 for r in csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)]
    quoted = [r for r in every if '"' in r[0] + r[1]][:20]
    out = list(dict.fromkeys(quoted + [r for r in every if r not in quoted]))  # (pair, score) seen once
    assert len({(a, b) for a, b, _ in out}) == len(out), "a pair repeated with another score"
    return out[:N_ROWS]


@pytest.fixture(scope="module")
def files(rows, tmp_path_factory) -> dict[str, dict]:
    """Five data sets of the same pairs: {name: {"path", "columns" (None: found by kind), "scores"}}."""
    import datasets
    import pandas as pd

    root = tmp_path_factory.mktemp("pairs")
    s1, s2, gold = [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]
    out = {}
    # csv with its own column names (two text, one numeric: found by kind), score 0-1, csv quoting.
    path = root / "mine.csv"
    pd.DataFrame({"text_a": s1, "text_b": s2, "similarity": [g / 5 for g in gold]}).to_csv(path, index=False)
    out["mine"] = {"path": path, "columns": None, "scores": [g / 5 for g in gold]}
    # jsonl, score 0-100.
    path = root / "web.jsonl"
    with open(path, "w", encoding="utf-8") as fh:
        for a, b, g in rows:
            fh.write(json.dumps({"premise": a, "hypothesis": b, "gold": g * 20}) + "\n")
    out["web"] = {"path": path, "columns": None, "scores": [g * 20 for g in gold]}
    # parquet with an id column too (two numeric columns: the columns are named), score 0-1, reversed.
    path = root / "rev.parquet"
    pd.DataFrame({"id": range(len(rows)), "s1": s1, "s2": s2, "label": [1 - g / 5 for g in gold]}).to_parquet(path)
    out["rev"] = {"path": path, "columns": "s1,s2,label", "scores": [1 - g / 5 for g in gold]}
    # SICK's layout: pair_ID, sentence_A, sentence_B, relatedness_score (1-5), label; TSV, quotes literal.
    path = root / "sick-like.tsv"
    labels = ["CONTRADICTION" if g < 1.5 else "NEUTRAL" if g < 3.5 else "ENTAILMENT" for g in gold]
    lines = ["pair_ID\tsentence_A\tsentence_B\trelatedness_score\tlabel"]
    lines += [f"{i + 1}\t{a}\t{b}\t{1 + 4 * g / 5:.4f}\t{lab}" for i, ((a, b, g), lab) in enumerate(zip(rows, labels, strict=True))]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    out["sick-like"] = {"path": path, "columns": "sentence_A,sentence_B,relatedness_score",
                            "scores": [float(f"{1 + 4 * g / 5:.4f}") for g in gold]}
    # a datasets folder (save_to_disk), score 0-5 under the STS names.
    path = root / "saved"
    datasets.Dataset.from_dict({"sentence1": s1, "sentence2": s2, "score": gold}).save_to_disk(str(path))
    out["saved"] = {"path": path, "columns": None, "scores": gold}
    assert any('"' in a for a in s1 + s2), "the rows should hold a quote character (TSV quoting off is tested)"
    return out


@pytest.fixture(scope="module")
def st_model(minilm_path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(minilm_path), device="cpu")


def st_reference(model, rows, scores, name):
    """sentence-transformers' EmbeddingSimilarityEvaluator on the rows, with these scores."""
    from sentence_transformers.evaluation import EmbeddingSimilarityEvaluator

    return EmbeddingSimilarityEvaluator([r[0] for r in rows], [r[1] for r in rows], scores, name=name,
                                        similarity_fn_names=FNS, write_csv=False)(model)


@pytest.fixture(scope="module")
def st_refs(st_model, rows, files) -> dict[str, dict[str, float]]:
    """The reference metrics of all-MiniLM-L6-v2 on each file's rows and scores, as sentence-transformers has them."""
    return {name: st_reference(st_model, rows, spec["scores"], name) for name, spec in files.items()}


@pytest.fixture(scope="module")
def small_model(minilm_path, tmp_path_factory) -> Path:
    """all-MiniLM-L6-v2 cut to its first 2 layers, saved: a second, weaker model that loads by folder."""
    from workbench import build_model

    folder = tmp_path_factory.mktemp("models") / "minilm-2-layers"
    build_model(str(minilm_path), keep_layers=[0, 1], device="cpu").save(folder)
    return folder


# ----- acceptance 1: every metric as sentence-transformers, on files never seen ----------------------------------


def test_eval_on_files_matches_sentence_transformers(minilm_path, files, st_refs, tmp_path, capsys):
    out = tmp_path / "m.json"
    argv = ["eval", "--model", str(minilm_path), "--json", str(out)]
    for spec in files.values():
        argv += ["--data", str(spec["path"])] + (["--columns", spec["columns"]] if spec["columns"] else [])
    assert main(argv) == 0
    printed = capsys.readouterr().out
    mine = json.loads(out.read_text())
    for name in files:
        ref = st_refs[name]
        keys = [f"{name}_{k}" for k in KINDS]
        assert set(keys) <= set(mine) and set(keys) <= set(ref), name
        for key in keys:
            assert abs(mine[key] - ref[key]) <= 1e-4, (key, mine[key], ref[key])
        assert f"data: {name} = " in printed and f"({N_ROWS} pairs; columns " in printed
    # Score scales do not matter: the 0-1 csv and the 0-100 jsonl give the same correlations,
    # the reversed parquet the opposite.
    assert mine["mine_spearman_cosine"] == pytest.approx(mine["web_spearman_cosine"], abs=1e-9)
    assert mine["rev_spearman_cosine"] == pytest.approx(-mine["mine_spearman_cosine"], abs=1e-9)
    assert 0.75 < mine["mine_spearman_cosine"] < 0.95  # all-MiniLM-L6-v2 on STS-B dev rows
    # One table of the primary metric, model x data set.
    assert re.search(r"spearman_cosine\s+mine\s+web\s+rev\s+sick-like\s+saved", printed)


def test_python_api_from_dataset_and_compare(minilm_path, files, rows, st_model, st_refs):
    from workbench import load_model

    spec = files["sick-like"]
    ev = STSEvaluator.from_dataset(spec["path"], columns=spec["columns"].split(","))
    assert ev.name == "sick-like" and len(ev.scores) == N_ROWS and ev.pairs.columns[2] == "relatedness_score"
    assert ev.sentences1 == [r[0] for r in rows]  # quotes kept as text: TSV quoting is off
    ours = load_model(str(minilm_path), device="cpu")
    table = compare({"ours": ours, "st": st_model}, [ev])
    ref = st_refs[ev.name]
    for model in ("ours", "st"):
        assert table.loc[model, ev.name] == pytest.approx(ref[ev.primary_metric], abs=1e-4)
        got = table.attrs["metrics"][model][ev.name]
        assert all(abs(got[k] - ref[k]) <= 1e-4 for k in ref), model
    long = long_metrics(table)
    assert len(long) == 2 * len(ref) and long["primary"].sum() == 2
    pearson = metric_table(table, "pearson_cosine")
    assert pearson.loc["st", ev.name] == pytest.approx(ref[f"{ev.name}_pearson_cosine"], abs=1e-4)


# ----- acceptance 3: two models, two data sets: one table, one chart --------------------------------------------


def test_two_models_two_data_sets_one_table_and_a_chart(minilm_path, small_model, files, rows, tmp_path, capsys):
    from sentence_transformers import SentenceTransformer

    report, out = tmp_path / "cmp.html", tmp_path / "m.json"
    sick = files["sick-like"]
    assert main(["eval", "--model", str(minilm_path), "--model", str(small_model),
                 "--data", str(files["mine"]["path"]), "--data", str(sick["path"]), "--columns", sick["columns"],
                 "--json", str(out), "--report", str(report)]) == 0
    printed = capsys.readouterr().out
    table_lines = printed[printed.index("spearman_cosine"):].splitlines()[:3]
    assert re.fullmatch(r"spearman_cosine\s+mine\s+sick-like", table_lines[0])
    results = json.loads(out.read_text())
    assert set(results) == {str(minilm_path), str(small_model)}
    for line, model in zip(table_lines[1:], results, strict=True):
        assert line.startswith(model)
        numbers = [float(x) for x in line[len(model):].split()]
        assert numbers == pytest.approx([results[model]["mine_spearman_cosine"],
                                         results[model]["sick-like_spearman_cosine"]], abs=5e-5)
    # The small model's numbers are its own (as sentence-transformers loads the same folder).
    ref = st_reference(SentenceTransformer(str(small_model), device="cpu"), rows, files["mine"]["scores"], "mine")
    assert results[str(small_model)]["mine_spearman_cosine"] == pytest.approx(ref["mine_spearman_cosine"], abs=1e-4)
    assert results[str(small_model)]["mine_spearman_cosine"] < results[str(minilm_path)]["mine_spearman_cosine"]
    # The chart: self-contained HTML with plotly.js inside, one bar trace per model over both data sets.
    from plotly.offline import get_plotlyjs

    page = report.read_text(encoding="utf-8")
    assert get_plotlyjs() in page  # plotly.js is embedded, not fetched
    figure = json.loads(re.search(r'Plotly\.newPlot\(\s*"[^"]+",\s*(\[.*?\]),\s*\{', page, re.S).group(1))
    assert [bar["type"] for bar in figure] == ["bar", "bar"]
    assert [bar["name"] for bar in figure] == [str(minilm_path), str(small_model)]
    assert figure[1]["x"] == ["mine", "sick-like"]
    assert figure[1]["y"] == pytest.approx([results[str(small_model)]["mine_spearman_cosine"],
                                            results[str(small_model)]["sick-like_spearman_cosine"]])


# ----- compare and the widget, with cheap encoders ----------------------------------------------------------------


def bow(texts: list[str], dim: int = 64) -> np.ndarray:
    """Hashed bag of words: a cheap, deterministic encoder."""
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in text.lower().split():
            out[row, zlib.crc32(word.encode()) % dim] += 1.0
    return out + 0.01


class Counting:
    def __init__(self, fn) -> None:
        self.fn, self.seen = fn, []

    def __call__(self, texts):
        self.seen += list(texts)
        return self.fn(texts)


PAIRS_A = (["a man plays the guitar", "a woman slices an onion", "the cat sleeps", "stocks fell today"],
           ["a person plays music", "someone cuts an onion", "a dog runs", "the market dropped"], [4.0, 3.5, 1.0, 3.0])
PAIRS_B = (["a man plays the guitar", "the cat sleeps", "rain is falling"],
           ["a man plays a guitar", "the stock market", "it rains"], [5.0, 0.0, 4.0])


def test_compare_encodes_each_text_once_per_model_and_matches_the_evaluators():
    a, b = STSEvaluator(*PAIRS_A, name="a"), STSEvaluator(*PAIRS_B, name="b")
    first, second = Counting(bow), Counting(lambda t: bow(t, dim=8))
    table = compare({"bow64": first, "bow8": second}, [a, b])
    for counting in (first, second):
        assert sorted(counting.seen) == sorted(set(a.texts) | set(b.texts))  # shared texts once
    assert list(table.index) == ["bow64", "bow8"] and list(table.columns) == ["a", "b"]
    for model, fn in (("bow64", bow), ("bow8", lambda t: bow(t, dim=8))):
        for ev in (a, b):
            direct = ev(fn)
            assert table.attrs["metrics"][model][ev.name] == pytest.approx(direct)
            assert table.loc[model, ev.name] == pytest.approx(direct[ev.primary_metric])
    text = format_comparison(table)
    assert text.splitlines()[0].split() == ["spearman_cosine", "a", "b"]
    with pytest.raises(ValueError, match="two evaluators are named 'a'"):
        compare([bow], [a, STSEvaluator(*PAIRS_B, name="a")])


def test_model_comparison_widget_draws_the_table():
    from workbench.widgets import ModelComparison

    a, b = STSEvaluator(*PAIRS_A, name="a"), STSEvaluator(*PAIRS_B, name="b")
    table = compare({"bow64": bow, "bow8": lambda t: bow(t, dim=8)}, [a, b])
    w = ModelComparison(table)
    assert [bar.name for bar in w.fig.data] == ["bow64", "bow8"]
    assert w.fig.layout.barmode == "group"
    for bar, model in zip(w.fig.data, table.index, strict=True):
        assert list(bar.x) == ["a", "b"] and list(bar.y) == pytest.approx(table.loc[model].tolist())
    assert "spearman_cosine" in w.fig.layout.yaxis.title.text and f"{table.loc['bow8', 'b']:.4f}" in w.table_html.value
    w.metric.value = "pearson_dot"
    assert w.fig.layout.yaxis.title.text == "pearson_dot"
    for bar, model in zip(w.fig.data, table.index, strict=True):
        expected = [table.attrs["metrics"][model][d][f"{d}_pearson_dot"] for d in ("a", "b")]
        assert list(bar.y) == pytest.approx(expected)
        assert f"{expected[0]:.4f}" in w.table_html.value
    assert not w.errors


# ----- column detection -------------------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


GOOD = [("A cat sits.", "A kitten sits.", "4.5"), ("A man runs.", "A woman walks.", "2"), ("Rain.", "Stocks.", "0.5")]


def table_text(rows, header=("sentence1", "sentence2", "score"), sep=","):
    return "\n".join([sep.join(header)] + [sep.join(r) for r in rows]) + "\n"


def test_columns_are_found_when_unambiguous_and_named_otherwise(tmp_path):
    pairs = load_pairs(write(tmp_path / "a.csv", table_text(GOOD, ("left", "right", "gold"))))
    assert pairs.columns == ("left", "right", "gold") and pairs.scores == [4.5, 2.0, 0.5]
    extra = [("1",) + r + ("NEUTRAL",) for r in GOOD]
    sick = write(tmp_path / "sick.csv", table_text(extra, ("pair_ID", "sentence_A", "sentence_B", "relatedness_score", "label")))
    with pytest.raises(ColumnError) as err:
        load_pairs(sick)
    message = str(err.value)
    assert "sick.csv" in message and "'sentence_A', 'sentence_B', 'label'" in message and "'pair_ID', 'relatedness_score'" in message
    assert "--columns" in message and "\n" not in message
    assert load_pairs(sick, columns=("sentence_A", "sentence_B", "relatedness_score")).scores == [4.5, 2.0, 0.5]
    with pytest.raises(KeyError, match="'sentence_X' not found; the data set has columns 'pair_ID'"):
        load_pairs(sick, columns=("sentence_X", "sentence_B", "relatedness_score"))
    # a stray bad cell does not make the score column look like text: it is a bad row instead
    stray = write(tmp_path / "stray.csv", table_text(GOOD + [("x y", "z w", "n/a")], ("l", "r", "g")))
    with pytest.raises(DataError, match=r"stray.csv, line 5 \(data row 4\), column 'g': score 'n/a' is not a number"):
        load_pairs(stray)


# ----- bad input: one line naming file, row and column ----------------------------------------------------------


def bad_files(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    """{case: (file, the message's pattern)} for each kind of bad row, in four formats."""
    import pandas as pd

    cases = {}
    rows = GOOD[:1] + [("A dog barks.", "A dog is loud.", "high")] + GOOD[1:]
    cases[NOT_A_NUMBER] = (write(tmp_path / "words.csv", table_text(rows)),
                           r"words.csv, line 3 \(data row 2\), column 'score': score 'high' is not a number")
    rows = GOOD + [("One more.", "Another.", "nan")]
    cases[NO_SCORE] = (write(tmp_path / "nan.tsv", table_text(rows, sep="\t")),
                       r"nan.tsv, line 5 \(data row 4\), column 'score': score 'nan' is not a finite number")
    frame = pd.DataFrame(GOOD + [("", "Not empty.", "3")], columns=["sentence1", "sentence2", "score"])
    frame["score"] = frame["score"].astype(float)
    frame.to_parquet(tmp_path / "empty.parquet")
    cases[EMPTY_SENTENCE] = (tmp_path / "empty.parquet",
                             r"empty.parquet, data row 4, column 'sentence1': the sentence is empty")
    lines = [json.dumps({"sentence1": a, "sentence2": b, "score": float(s)}) for a, b, s in GOOD + GOOD[:1]]
    cases[DUPLICATE] = (write(tmp_path / "twice.jsonl", "\n".join(lines) + "\n"),
                        r"twice.jsonl, line 4 \(data row 4\), columns 'sentence1', 'sentence2': "
                        r"the same pair as line 1 \(data row 1\)")
    return cases


def test_bad_rows_are_one_line_naming_file_row_and_column(tmp_path):
    for reason, (path, pattern) in bad_files(tmp_path).items():
        with pytest.raises(DataError) as err:
            STSEvaluator.from_dataset(path)
        message = str(err.value)
        assert re.search(pattern, message), (reason, message)
        assert "\n" not in message and "--skip-bad-rows" in message
        skipped = load_pairs(path, skip_bad_rows=True)
        assert skipped.skipped == {reason: 1} and len(skipped) == 3, reason
        assert skipped.skipped_summary() == f"skipped 1 bad row: 1 {reason}"
        assert re.search(pattern, skipped.first_skipped[reason])
    # a NaN in a parquet float column, a null there, and an empty score cell in a csv
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = {"a": [r[0] for r in GOOD], "b": [r[1] for r in GOOD]}
    pq.write_table(pa.table({**texts, "y": pa.array([4.5, math.nan, 0.5])}), tmp_path / "nan.parquet")
    with pytest.raises(DataError, match=r"nan.parquet, data row 2, column 'y': score nan is not a finite number"):
        load_pairs(tmp_path / "nan.parquet")
    pq.write_table(pa.table({**texts, "y": pa.array([4.5, 2.0, None])}), tmp_path / "null.parquet")
    with pytest.raises(DataError, match=r"null.parquet, data row 3, column 'y': the score is missing"):
        load_pairs(tmp_path / "null.parquet")
    missing = write(tmp_path / "missing.csv", table_text(GOOD[:1] + [("x", "y", "")] + GOOD[1:]))
    with pytest.raises(DataError, match=r"missing.csv, line 3 \(data row 2\), column 'score': the score is missing"):
        load_pairs(missing)


def test_too_few_pairs_and_equal_scores(tmp_path):
    with pytest.raises(DataError, match=r"two.csv: 2 scored pairs; at least 3 are needed"):
        load_pairs(write(tmp_path / "two.csv", table_text(GOOD[:2])))
    rows = GOOD[:2] + [("", "x", "1")]
    with pytest.raises(DataError, match=r"after.csv: 2 scored pairs after skipping 1 bad row; at least 3"):
        load_pairs(write(tmp_path / "after.csv", table_text(rows)), skip_bad_rows=True)
    same = [(a, b, "3") for a, b, _ in GOOD]
    with pytest.raises(DataError, match=r"same.csv, column 'score': all 3 scores equal 3"):
        load_pairs(write(tmp_path / "same.csv", table_text(same)))


def test_cli_bad_input_one_line_and_skip_bad_rows(tmp_path, capsys, minilm_path):
    cases = bad_files(tmp_path)
    for reason, (path, pattern) in cases.items():
        assert main(["eval", "--model", "no-such-model-needed", "--data", str(path)]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and re.search(pattern, err), (reason, err)
    # all four bad rows in one file, skipped and counted
    rows = GOOD + [("A dog barks.", "A dog is loud.", "high"), ("One.", "Two.", "nan"), ("", "x", "1"), GOOD[0]]
    path = write(tmp_path / "all.csv", table_text(rows))
    out = tmp_path / "m.json"
    assert main(["eval", "--model", str(minilm_path), "--data", str(path), "--skip-bad-rows", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (f"skipped 4 bad rows: 1 {NOT_A_NUMBER}, 1 {NO_SCORE}, 1 {EMPTY_SENTENCE}, 1 {DUPLICATE}") in printed
    assert "all.csv, line 5 (data row 4), column 'score'" in printed  # the first of each reason is named
    assert "(3 pairs; columns sentence1, sentence2, score)" in printed
    assert "all_spearman_cosine" in json.loads(out.read_text())


def test_cli_data_rules(tmp_path, capsys, stsb_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    good = write(tmp_path / "good.csv", table_text(GOOD, ("p", "q", "g")))
    # --splits picks STS-B splits: with files only it is refused
    assert main(["eval", "--data", str(good), "--splits", "test"]) == 2
    assert "--splits picks STS-B splits" in capsys.readouterr().err
    # a folder that is neither STS-B nor a datasets folder
    assert main(["eval", "--data", str(tmp_path)]) == 2
    assert "neither an STS-B folder" in capsys.readouterr().err
    # --columns on an STS-B folder is refused; one before the first --data applies to every --data
    assert main(["eval", "--data", str(stsb_dir.parent), "--columns", "a,b,c"]) == 2
    assert "is an STS-B folder" in capsys.readouterr().err
    sick = write(tmp_path / "sick.csv", table_text([("1",) + r for r in GOOD], ("id", "p", "q", "g")))
    assert main(["eval", "--columns", "x,q,g", "--data", str(sick), "--data", str(good)]) == 2
    assert "sick.csv: column 'x' not found" in capsys.readouterr().err
    assert main(["eval", "--data", str(good), "--columns", "x,q,g", "--data", str(sick)]) == 2
    assert "good.csv: column 'x' not found" in capsys.readouterr().err
    assert main(["eval", "--data", str(good), "--data", str(sick), "--columns", "x,q,g"]) == 2
    assert "sick.csv: column 'x' not found" in capsys.readouterr().err
    # a missing file with an @ in its name is a missing file; FOLDER@SPLIT picks a split of a saved DatasetDict
    assert main(["eval", "--data", str(tmp_path / "mine@2.csv")]) == 2
    assert "mine@2.csv: no such file" in capsys.readouterr().err
    import datasets

    part = datasets.Dataset.from_dict({"p": [r[0] for r in GOOD], "q": [r[1] for r in GOOD],
                                       "g": [float(r[2]) for r in GOOD]})
    datasets.DatasetDict({"train": part, "test": part}).save_to_disk(str(tmp_path / "dd"))
    assert main(["eval", "--data", str(tmp_path / "dd"), "--model", "no-such-model"]) == 2
    assert "has splits train, test; choose one" in capsys.readouterr().err
    assert main(["eval", "--data", f"{tmp_path / 'dd'}@nope", "--model", "no-such-model"]) == 2
    assert "no split 'nope'; it has train, test" in capsys.readouterr().err
    # a hub id needs the hub (off in tests)
    assert main(["eval", "--data", "someone/their-pairs@test"]) == 2
    err = capsys.readouterr().err
    assert "someone/their-pairs: no such file or folder; as a Hugging Face hub id: not in the local hub cache" in err


def test_from_dataset_in_memory_keeps_the_old_defaults():
    import datasets

    ds = datasets.Dataset.from_dict({"sentence1": list(PAIRS_B[0]) * 2, "sentence2": list(PAIRS_B[1]) * 2,
                                     "score": PAIRS_B[2] * 2})
    ev = STSEvaluator.from_dataset(ds)  # a table in memory is taken as given: repeated pairs stay, as STS-B's do
    assert ev.name == "sts-dev" and len(ev.scores) == 6
    with pytest.raises(DataError, match=r"data row 4, columns 'sentence1', 'sentence2': the same pair as data row 1"):
        STSEvaluator.from_dataset(ds, check=True)
    assert len(STSEvaluator.from_dataset(ds, skip_bad_rows=True).scores) == 3
    dd = datasets.DatasetDict({"train": ds, "test": ds.select(range(3))})
    assert len(STSEvaluator.from_dataset(dd, split="test").scores) == 3
    with pytest.raises(DataError, match="has splits train, test"):
        STSEvaluator.from_dataset(dd)
