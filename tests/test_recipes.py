"""Typed recipes: every section checked when the file (or a --set, or with_) is read, before
anything is loaded; what a recipe says is what runs and what config.json records."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from workbench.recipes import DataSpec, LossSpec, Recipe, RecipeError, load_recipe
from workbench.recipes.sections import RECIPES_DIR

BASE = """
name = "careless"
kind = "train"

[model]
base = "all-MiniLM-L6-v2"
keep_layers = [0]

[loss]
name = "MultipleNegativesRankingLoss"

[[data]]
loader = "caption_pairs"
pairs_per_image = 2

[eval]
sts_dev = true

[train]
warmup_ratio = 0.1
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "careless.toml"
    path.write_text(text, encoding="utf-8")
    return path


# Each case: (section, the line added to it, what the one-line error must say).
CARELESS = [
    ("train", "batch_size = 16.7", "[train]: batch_size: expected a whole number, got 16.7"),
    ("train", "max_steps = 2.5", "[train]: max_steps: expected a whole number"),
    ("train", "epochs = 1e9", "[train]: epochs: expected a whole number"),
    ("train", 'keep_best = "false"', "[train]: keep_best: expected true or false, got 'false'"),
    ("train", 'lr = "fast"', "[train]: lr: expected a number, got 'fast'"),
    ("train", "max_grad_norm = -1", "[train]: invalid TrainConfig: max_grad_norm must be >= 0"),
    ("train", "lerning_rate = 1e-4", "[train]: unknown key 'lerning_rate'"),
    ("eval", 'sts_test = "no"', "[eval]: sts_test: expected true or false, got 'no'"),
    ("eval", "sts_tset = false", "[eval]: unknown key 'sts_tset' (did you mean 'sts_test'?)"),
    ("eval", "mse_sentences = 10", "[eval]: mse_sentences applies to distill recipes only"),
    ("loss", "scael = 10.0", "[loss]: unknown key 'scael' (did you mean 'scale'?) for MultipleNegativesRankingLoss"),
    ("loss", "mini_batch_size = 8", "[loss]: unknown key 'mini_batch_size'"),
    ("loss", 'scale = "big"', "[loss]: scale: expected a number, got 'big'"),
    ("loss", "scale = -5.0", "[loss]: scale must be a positive finite number"),
    ("loss", 'similarity = "euclidean"', "[loss]: similarity='euclidean': losses score with cosine or dot"),
    ("model", "pooling = 'avg'", "[model]: pooling: unknown mode 'avg'"),
    ("model", "denes = 256", "[model]: unknown key 'denes' (did you mean 'dense'?)"),
    ("model", "normalize = 1", "[model]: normalize: expected true or false"),
]


@pytest.mark.parametrize(("section", "line", "message"), CARELESS, ids=[c[1] for c in CARELESS])
def test_a_careless_value_is_refused_naming_file_section_and_key(tmp_path, section, line, message):
    text = BASE.replace(f"[{section}]\n", f"[{section}]\n{line}\n", 1)
    path = _write(tmp_path, text)
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    assert str(err.value).startswith(str(path)) and message in str(err.value)
    assert "\n" not in str(err.value)


def test_data_entries_are_checked_against_their_loader(tmp_path):
    path = _write(tmp_path, BASE.replace("pairs_per_image = 2", "pairs_per_imag = 2"))
    with pytest.raises(RecipeError, match=r"\[data 1\]: unknown key 'pairs_per_imag' \(did you mean 'pairs_per_image'\?\) "
                                          r"for loader 'caption_pairs'"):
        load_recipe(path)
    path = _write(tmp_path, BASE.replace('loader = "caption_pairs"', 'loader = "captions"'))
    with pytest.raises(RecipeError, match="unknown loader 'captions'"):
        load_recipe(path)
    with pytest.raises(ValueError, match="pairs_per_image: expected a whole number"):
        DataSpec.from_dict({"loader": "caption_pairs", "pairs_per_image": "2"})


@pytest.mark.parametrize(("assignment", "message"), [
    ("eval.sts_test=flase", "--set [eval]: sts_test: expected true or false, got 'flase'"),
    ('eval.sts_dev="no"', "--set [eval]: sts_dev: expected true or false, got 'no'"),
    ("train.lr=abc", "[train]: lr: expected a number, got 'abc'"),
    ("train.batch_size=16.7", "[train]: batch_size: expected a whole number"),
    ("eval.sts_tset=false", "did you mean 'sts_test'?"),
    ("loss.name=NoSuchLoss", "[loss]: name: unknown loss 'NoSuchLoss'"),
    ("loss.name=CoSENTLoss", "a distillation trains on teacher embeddings with MSELoss, not CoSENTLoss"),
    ("student.keep_layer=[0]", "[student]: unknown key 'keep_layer' (did you mean 'keep_layers'?)"),
    ("teacher.pca_sentence=10", "[teacher]: unknown key 'pca_sentence' (did you mean 'pca_sentences'?)"),
    ("trian.lr=1e-4", "unknown key 'trian' (did you mean 'train'?)"),
])
def test_set_goes_through_the_same_checks(assignment, message):
    with pytest.raises(RecipeError) as err:
        load_recipe("offline-a-distill", [assignment])
    assert message in str(err.value) and "offline-a-distill.toml" in str(err.value)


def test_cached_mnrl_cannot_be_asked_to_gather():
    with pytest.raises(RecipeError, match="gather_across_devices=True is not supported"):
        load_recipe("offline-b-mnrl-minilm", ["loss.name=CachedMultipleNegativesRankingLoss",
                                              "loss.gather_across_devices=true"])


def test_the_cli_refuses_before_loading_anything(tmp_path):
    # one line on stderr, exit 2, and within the time it takes to import: no model or data was loaded
    proc = subprocess.run([sys.executable, "-m", "workbench", "distill", "offline-a-distill",
                           "--set", "loss.name=NoSuchLoss"], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "WORKBENCH_DATA": str(tmp_path / "none")})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "[loss]: name: unknown loss 'NoSuchLoss'" in lines[0], proc.stderr
    assert not (tmp_path / "runs").exists()


def test_with_returns_a_new_checked_recipe():
    recipe = load_recipe("offline-b-mnrl-minilm")
    changed = recipe.with_(train={"lr": 1e-4}, loss={"scale": 10}, data={"limit": 300}, model={"pooling": "cls"})
    assert (changed.train.lr, changed.loss.params["scale"], changed.model.pooling) == (1e-4, 10.0, "cls")
    assert [d.limit for d in changed.data] == [300, 300]
    assert recipe.train.lr == 5e-5 and recipe.loss.params["scale"] == 20.0  # frozen: the original is unchanged
    with pytest.raises(RecipeError, match=r"\[train\]: batch_size: expected a whole number"):
        recipe.with_(train={"batch_size": 16.7})
    # another loss keeps only what it also takes: MNRL's scale goes to the cached variant, not a similarity it lacks
    cached = recipe.with_(loss={"name": "CachedMultipleNegativesRankingLoss", "mini_batch_size": 16})
    assert cached.loss.params == {"scale": 20.0, "mini_batch_size": 16}


def test_each_default_lives_in_one_place():
    import inspect

    from workbench import distill, losses

    mnrl = LossSpec()  # names no scale: the class's own default is what the dashboard shows and the loss uses
    assert mnrl.value("scale") == inspect.signature(losses.MultipleNegativesRankingLoss).parameters["scale"].default
    teacher = load_recipe("offline-a-distill").teacher
    assert teacher.pca_sentences == distill.PCA_SENTENCES
    assert load_recipe("offline-a-distill").loss.name == "MSELoss"


def test_every_shipped_recipe_parses_and_round_trips():
    for path in sorted(RECIPES_DIR.glob("*.toml")):
        recipe = load_recipe(path)
        again = Recipe.from_dict(recipe.to_dict(), path=str(path))
        assert dataclasses_equal(again, recipe), path.name
        json.dumps(recipe.to_dict())  # config.json holds it


def dataclasses_equal(a: Recipe, b: Recipe) -> bool:
    return a.to_dict() == b.to_dict()


def test_a_distill_student_copied_from_the_teacher_honours_pooling(minilm_path):
    from workbench import load_model
    from workbench.recipes import build_from_spec
    from workbench.recipes.sections import ModelSpec

    teacher = load_model(minilm_path)
    student = build_from_spec(ModelSpec(keep_layers=(0, 5), pooling="max", max_seq_length=64), teacher=teacher)
    assert student.layers[1].modes == ["max"] and student.max_seq_length == 64
    assert len(student.transformer.auto_model.encoder.layer) == 2
    same = build_from_spec(ModelSpec(keep_layers=(0, 5)), teacher=teacher)
    assert same.layers[1].modes == teacher.layers[1].modes  # left out: the teacher's pooling


def test_a_distillation_card_counts_only_the_sentences_it_trained_on(tmp_path, monkeypatch, data_dir):
    """The first mse_sentences sentences are held out for the MSE metric: the card's dataset size leaves them out
    (the workshop's card said 2,280 training samples for 1,280 trained on + 1,000 held out)."""
    from workbench.recipes import run_recipe

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    recipe = load_recipe("offline-a-distill").with_(
        student={"keep_layers": [0]}, data={"limit": 120}, eval={"mse_sentences": 40, "sts_dev": False, "sts_test": False},
        train={"max_steps": 2, "batch_size": 16})
    result = run_recipe(recipe, run_dir=tmp_path / "run", device="cpu")
    card = (Path(result.model_path) / "README.md").read_text(encoding="utf-8")
    assert "* Size: 80 training samples" in card and "dataset_size:80" in card


FRESH_STATIC = """
name = "fresh-static"
kind = "train"

[model]
static = true
tokenizer = "all-MiniLM-L6-v2"
dim = 16

[loss]
name = "MultipleNegativesRankingLoss"

[[data]]
loader = "caption_pairs"
pairs_per_image = 2

[train]
max_steps = 3
batch_size = 8
lr = 0.05
keep_best = false
"""


DISTILL_FRESH_STATIC = """
name = "distill-fresh-static"
kind = "distill"

[teacher]
model = "all-MiniLM-L6-v2"

[student]
static = true
tokenizer = "all-MiniLM-L6-v2"
dim = 16

[loss]
name = "MSELoss"

[[data]]
loader = "sentences"
"""


@pytest.mark.parametrize(("change", "message"), [
    ("dim = 16", "[model]: a fresh static model needs dim = <vector size, >= 1> (got None)"),
    ('tokenizer = "all-MiniLM-L6-v2"', "[model]: dim applies to a fresh static model only (static = true with tokenizer"),
    ("dim = 16\npooling = 'cls'", "remove pooling (it takes tokenizer, dim, normalize, seed)"),
])
def test_a_fresh_static_model_is_checked(tmp_path, change, message):
    text = FRESH_STATIC
    if "\n" in change:
        text = text.replace("dim = 16", change)
    else:
        text = text.replace(change + "\n", "")
    with pytest.raises(RecipeError) as err:
        load_recipe(_write(tmp_path, text))
    assert message in str(err.value)
    distill = load_recipe("offline-static").to_dict()
    assert distill["student"]["static"] is True  # the distilled static student is still its own thing
    with pytest.raises(RecipeError, match=r"\[student\]: tokenizer and dim make a fresh static table; frequencies "
                                          "belong to a static student distilled from a teacher"):
        load_recipe("offline-static", ['student.tokenizer="all-MiniLM-L6-v2"', "student.dim=8"])
    with pytest.raises(RecipeError, match=r"\[student\]: a static student is distilled from the teacher's vocabulary; "
                                          "remove tokenizer and dim"):
        load_recipe(_write(tmp_path, DISTILL_FRESH_STATIC))


def test_a_fresh_static_recipe_trains_from_random_vectors(tmp_path, minilm_path):
    from sentence_transformers import SentenceTransformer

    from workbench.models import load_model
    from workbench.recipes import run_recipe
    from workbench.recipes.run import _seeded, build_from_spec

    recipe = load_recipe(_write(tmp_path, FRESH_STATIC))
    start = build_from_spec(_seeded(recipe))  # what run_recipe builds: seeded by [train] seed
    table = start.layers[0].embedding.weight.detach().clone()
    tok = start.layers[0].tokenizer
    assert table.shape == (30522, 16) and 0.005 < float(table[tok.unk_token_id].std()) < 0.02
    assert float(table[0].abs().sum()) == 0.0  # [PAD] (a special a text never produces) starts at zero
    again = build_from_spec(_seeded(recipe)).layers[0].embedding.weight  # seeded: the same start every time
    assert torch_equal(table, again)
    result = run_recipe(recipe, run_dir=tmp_path / "run")
    trained = load_model(result.model_path)
    moved = (trained.layers[0].embedding.weight.detach() - table).abs().sum(dim=1)
    assert moved.max() > 0 and (moved > 0).sum() < 30522  # the tokens it saw moved, the rest did not
    texts = ["A dog runs on the grass.", "Two people sit at a table."]
    ours = trained.encode(texts)
    theirs = SentenceTransformer(result.model_path, device="cpu").encode(texts)
    assert abs(ours - theirs).max() <= 1e-5


def torch_equal(a, b) -> bool:
    import torch

    return bool(torch.equal(a, b))
