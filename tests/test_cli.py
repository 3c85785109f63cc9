"""The workbench command: encode to .npy, eval tables, and one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from workbench.cli import main


def test_encode_texts_to_npy(minilm_path, tmp_path, capsys):
    out = tmp_path / "emb.npy"
    assert main(["encode", "A cat sits.", "A dog runs.", "--model", str(minilm_path), "--out", str(out), "--quiet"]) == 0
    emb = np.load(out)
    assert emb.shape == (2, 384) and emb.dtype == np.float32
    assert "encoded 2 texts" in capsys.readouterr().out
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no temporary file left behind"


def test_encode_from_txt_and_table_files(minilm_path, tmp_path):
    txt = tmp_path / "s.txt"
    txt.write_text("first line\n\nsecond line\n", encoding="utf-8")
    assert main(["encode", "--file", str(txt), "--model", str(minilm_path), "--out", str(tmp_path / "a.npy"), "--quiet"]) == 0
    assert np.load(tmp_path / "a.npy").shape == (2, 384)
    tsv = tmp_path / "s.tsv"
    tsv.write_text("id\ttext\n1\t\"quoted\" start\n2\tplain\n", encoding="utf-8")
    assert main(["encode", "--file", str(tsv), "--column", "text", "--model", str(minilm_path),
                 "--out", str(tmp_path / "b.npy"), "--quiet"]) == 0
    assert np.load(tmp_path / "b.npy").shape == (2, 384)


def test_errors_are_one_line_with_status_2(minilm_path, tmp_path, capsys):
    assert main(["encode", "--file", str(tmp_path / "missing.txt"), "--model", str(minilm_path)]) == 2
    err = capsys.readouterr().err
    assert "missing.txt" in err and "Traceback" not in err
    tsv = tmp_path / "s.tsv"
    tsv.write_text("id\ttext\n1\thello\n", encoding="utf-8")
    assert main(["encode", "--file", str(tsv), "--column", "sentence", "--model", str(minilm_path)]) == 2
    err = capsys.readouterr().err
    assert "sentence" in err and "s.tsv" in err
    assert main(["encode", "x", "--model", str(tmp_path / "no-such-model")]) == 2
    assert "no model folder" in capsys.readouterr().err


def test_eval_on_the_built_in_sample_says_it_is_a_sample(minilm_path, monkeypatch, capsys):
    monkeypatch.delenv("WORKBENCH_DATA", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.warns(UserWarning, match="SAMPLE"):
        assert main(["eval", "--model", str(minilm_path), "--splits", "test"]) == 0
    out = capsys.readouterr().out
    assert "SAMPLE" in out and "sts-test" in out and "spearman" in out


def test_eval_on_stsb_prints_the_table(minilm_path, stsb_dir, tmp_path, capsys):
    out_json = tmp_path / "m.json"
    assert main(["eval", "--model", str(minilm_path), "--splits", "test", "--data", str(stsb_dir.parent),
                 "--json", str(out_json)]) == 0
    out = capsys.readouterr().out
    assert "1379 pairs" in out and "0.8203" in out
    import json

    assert abs(json.loads(out_json.read_text())["sts-test_spearman_cosine"] - 0.8203) < 1e-4


def test_set_overrides_take_toml_values():
    # `--set` values read as they would in the recipe file: `false` is False, not the text "false"
    from workbench.recipes import load_recipe

    recipe = load_recipe("offline-a-distill", ["eval.sts_test=false", "train.lr=2e-4", "student.keep_layers=[0, 5]",
                                               "train.mixed_precision=bf16", "data.limit=300", "eval.mse_sentences=50",
                                               "train.keep_best=False", 'teacher.model="my teacher"'])
    assert recipe.eval.sts_test is False and recipe.eval.mse_sentences == 50
    assert recipe.train.lr == 2e-4 and recipe.train.mixed_precision == "bf16" and recipe.train.keep_best is False
    assert recipe.model.keep_layers == (0, 5) and recipe.teacher.model == "my teacher"
    assert [d.limit for d in recipe.data] == [300]  # every [[data]] entry
    with pytest.raises(ValueError, match="section.key=value"):
        load_recipe("offline-a-distill", ["lr=1e-4"])
