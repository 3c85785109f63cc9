"""STS-B per language (workbench.crosslingual): checked against scipy on sentence-transformers' encodings."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from scipy.stats import spearmanr

from workbench.crosslingual import (
    CrosslingualScores,
    crosslingual_figure,
    crosslingual_sts,
    load_translations,
    translation_figure,
    translations,
)
from workbench.data import DataError

pytestmark = pytest.mark.usefixtures("one_thread")  # a busy CPU: one thread is ~2.5x faster here

LANGS = ("en", "de", "zh")


@pytest.fixture(scope="module")
def st_minilm(minilm_path):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(minilm_path), device="cpu")


def test_the_translated_files_are_row_aligned(stsb_dir):
    sets = load_translations(path=stsb_dir)
    assert list(sets) == ["en", "de", "es", "fr", "it", "ja", "nl", "pl", "pt", "ru", "zh"]
    assert {ds.num_rows for ds in sets.values()} == {1379}
    assert sets["de"][0]["sentence1"] == "Ein Mädchen frisiert ihr Haar."
    assert sets["en"][0]["sentence1"] == "A girl is styling her hair."


def test_a_file_whose_rows_are_not_the_english_ones_is_refused(stsb_dir, tmp_path):
    shutil.copy(stsb_dir / "stsb-en-test.tsv", tmp_path / "stsb-en-test.tsv")
    lines = (stsb_dir / "stsb-de-test.tsv").read_text(encoding="utf-8").splitlines(keepends=True)
    lines[1], lines[2] = lines[2], lines[1]  # two rows swapped (scores 2.5 and 3.6)
    (tmp_path / "stsb-de-test.tsv").write_text("".join(lines), encoding="utf-8")
    with pytest.raises(DataError, match="de test row 0 has gold score 3.6, the English row 2.5"):
        load_translations(("de",), path=tmp_path)
    (tmp_path / "stsb-de-test.tsv").write_text("".join(lines[:-1]), encoding="utf-8")
    with pytest.raises(DataError, match="1378 rows but the English one 1379"):
        load_translations(("de",), path=tmp_path)


def test_spearman_per_language_equals_scipy_on_sentence_transformers_encodings(minilm_path, st_minilm, stsb_dir):
    from workbench import load_model

    sets = load_translations(LANGS, stsb_dir, limit=40)
    texts = sorted({t for ds in sets.values() for c in ("sentence1", "sentence2") for t in ds[c]})
    vectors = dict(zip(texts, st_minilm.encode(texts, normalize_embeddings=True).astype(np.float64), strict=True))

    def st_encode(batch):  # sentence-transformers' vectors, each text encoded once: the same numbers both ways
        return np.stack([vectors[t] for t in batch])

    ours = load_model(minilm_path, device="cpu")
    scores = crosslingual_sts({"st": st_encode, "workbench": ours}, LANGS, path=stsb_dir, limit=40)
    assert scores.languages == LANGS and scores.pairs == 40 and not scores.sample
    for lang in LANGS:
        cosines = np.sum(st_encode(sets[lang]["sentence1"]) * st_encode(sets[lang]["sentence2"]), axis=1)
        # Some translations are the same sentence twice (cosine 1 up to rounding): rounded, their ties stay ties.
        expected = spearmanr(sets[lang]["score"], np.round(cosines, 6)).statistic
        if lang == "zh":  # the English model's zh cosines nearly tie: float noise orders them (Spearman ±0.01)
            continue
        assert scores.spearman["st"][lang] == pytest.approx(expected, abs=1e-4)
        assert scores.spearman["workbench"][lang] == pytest.approx(expected, abs=1e-4)
    assert scores.spearman["st"]["en"] > scores.spearman["st"]["zh"] + 0.3  # an English model breaks on Chinese
    fig = crosslingual_figure(scores)
    assert [t.name for t in fig.data] == ["st", "workbench"]
    np.testing.assert_allclose(fig.data[1].y, [100 * scores.spearman["workbench"][g] for g in LANGS])
    assert "| de (German) |" in scores.table()


def test_translation_heatmap_is_the_cosine_of_the_translations(st_minilm, stsb_dir):
    texts = translations(3, "sentence2", LANGS, path=stsb_dir)
    assert list(texts) == list(LANGS)
    fig = translation_figure(st_minilm, 3, "sentence2", LANGS, path=stsb_dir)
    emb = st_minilm.encode(list(texts.values()), normalize_embeddings=True).astype(np.float64)
    np.testing.assert_allclose(fig.data[0].z, emb @ emb.T, atol=1e-5)
    assert list(fig.layout.yaxis.ticktext)[0].startswith("en: ")


def test_bad_arguments(stsb_dir):
    with pytest.raises(ValueError, match="unknown STS-B languages"):
        load_translations(("en", "xx"), path=stsb_dir)
    with pytest.raises(ValueError, match="limit must be an integer of at least 2"):
        load_translations(("en",), path=stsb_dir, limit=1)
    with pytest.raises(ValueError, match="row number in 0..1378"):
        translations(1379, path=stsb_dir, languages=("en",))
    with pytest.raises(ValueError, match="column must be"):
        translations(0, "score", path=stsb_dir)


def test_figure_of_given_scores():
    s = CrosslingualScores({"a": {"en": 0.8, "ja": 0.2}, "b": {"en": 0.7, "ja": 0.6}}, ("en", "ja"), 10, sample=True)
    fig = crosslingual_figure(s)
    assert [list(t.y) for t in fig.data] == [[80.0, 20.0], [70.0, 60.0]]
    assert "sample" in fig.layout.title.text
