"""The full model card: front matter that parses, tables with the right numbers, loading unharmed."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

from workbench.models import card as card_module
from workbench.models.card import DatasetInfo, minimal_card, model_card, non_default

yaml = pytest.importorskip("yaml")

STS_FNS = ("cosine", "manhattan", "euclidean", "dot")


@dataclass
class StandIn:
    """The attributes the card reads, without a real model."""

    dim: int = 256
    max_seq_length: int = 384
    similarity_fn_name: str = "cosine"
    source: str | None = None

    def __repr__(self) -> str:
        return ("EmbeddingModel(\n  Transformer(BertModel, layers=2, hidden=128, max_seq_length=384)\n"
                "  Pooling(128, mean)\n  Dense(128->256, Tanh)\n  Normalize()\n)")


def sts_metrics(name: str, spearman_cosine: float, shift: float) -> dict[str, float]:
    """A full STS metric dict like the evaluator's, with the given spearman_cosine."""
    m = {}
    for i, fn in enumerate(STS_FNS):
        m[f"{name}_pearson_{fn}"] = round(spearman_cosine - shift - 0.001 * i, 6)
        m[f"{name}_spearman_{fn}"] = spearman_cosine if fn == "cosine" else round(spearman_cosine - 0.002 * i, 6)
    m[f"{name}_pearson_max"] = max(m[f"{name}_pearson_{fn}"] for fn in STS_FNS)
    m[f"{name}_spearman_max"] = max(m[f"{name}_spearman_{fn}"] for fn in STS_FNS)
    return m


SEED_B_EVALS = {"sts-dev": sts_metrics("sts-dev", 0.7614, 0.0123), "sts-test": sts_metrics("sts-test", 0.6775, 0.0091)}
SEED_B_PRIMARY = {"sts-dev": "sts-dev_spearman_cosine", "sts-test": "sts-test_spearman_cosine"}
DEV_CURVE = [0.7247, 0.7388, 0.7452, 0.7503, 0.7549, 0.7571, 0.7598, 0.7611, 0.7609, 0.7614]
SEED_B_LOG = [
    {"epoch": round((i + 1) * 100 / 1083, 4), "step": (i + 1) * 100,
     "training_loss": None if i == 0 else round(3.0 - 0.1 * i, 4), "sts-dev_spearman_cosine": s}
    for i, s in enumerate(DEV_CURVE)
] + [{"epoch": 1.0, "step": 1083, "sts-test_spearman_cosine": 0.6775}]
SEED_B_DATA = DatasetInfo(
    name="all-nli", size=277_277, columns=("anchor", "positive", "negative"),
    samples=(
        {"anchor": "A person on a horse jumps over a broken down airplane.",
         "positive": "A person is outdoors, on a horse.", "negative": "A person is at a diner, ordering an omelette."},
        {"anchor": "Children smiling and waving at camera", "positive": "There are children present",
         "negative": "The kids are frowning"},
        {"anchor": "A pipe | in the text " + "very long " * 30, "positive": "<b>tags</b> & stuff",
         "negative": "line\nbreak"},
        {"anchor": "a fourth row", "positive": "not shown", "negative": "at all"},
    ),
    location="sentence-transformers/all-nli",
)
SEED_B_LOSS = {"name": "MultipleNegativesRankingLoss", "params": {"scale": 20.0, "similarity": "cosine"}}
DEFAULTS = {"lr": 2e-5, "batch_size": 64, "epochs": 1, "warmup_ratio": 0.1, "precision": "fp32", "seed": 0,
            "best_model_at_end": False}
SEED_B_CONFIG = {**DEFAULTS, "batch_size": 256, "precision": "bf16", "eval_every": 100}


def seed_b_card(**overrides) -> str:
    kwargs = dict(
        model_name="bert-tiny-nli", base_model="prajjwal1/bert-tiny", datasets=[SEED_B_DATA], loss=SEED_B_LOSS,
        train_config=SEED_B_CONFIG, default_config=DEFAULTS, evaluations=SEED_B_EVALS,
        primary_metrics=SEED_B_PRIMARY, training_log=SEED_B_LOG, hardware="1 x NVIDIA GeForce RTX 3090",
        training_seconds=102.0, license="apache-2.0",
        widget_sentences=["A man is eating food.", "A man is eating a piece of bread.", "A monkey is playing drums."],
    )
    kwargs.update(overrides)
    return model_card(StandIn(), **kwargs)


def front_matter(card: str) -> dict:
    assert card.startswith("---\n")
    head, sep, _ = card[4:].partition("\n---\n")
    assert sep, "the front matter is not closed"
    return yaml.safe_load(head)


def section(card: str, heading: str) -> str:
    """The text under a Markdown heading, up to the next heading of the same or a higher level."""
    level = len(heading.split(" ")[0])
    lines = card.split("\n")
    start = lines.index(heading) + 1
    fenced = False
    for end in range(start, len(lines)):
        fenced ^= lines[end].lstrip().startswith("```")
        hashes = re.match(r"(#+) ", lines[end])
        if hashes and not fenced and len(hashes.group(1)) <= level:
            return "\n".join(lines[start:end])
    return "\n".join(lines[start:])


def table_rows(text: str) -> list[list[str]]:
    """The cells of every table row in ``text`` (header and separator excluded)."""
    rows = [line.strip() for line in text.splitlines() if line.strip().startswith("|")]
    return [[c.strip() for c in row.strip("|").split(" | ")] for row in rows[2:]]


# --------------------------------------------------------------------------- front matter


def test_front_matter_parses_with_every_metric_and_exact_values():
    evals = {**SEED_B_EVALS, "mse": {"mse_negative_mse": -50.13}}
    front = front_matter(seed_b_card(evaluations=evals))
    assert front["library_name"] == "sentence-transformers"
    assert front["pipeline_tag"] == "sentence-similarity"
    assert front["language"] == ["en"] and front["license"] == "apache-2.0"
    assert front["base_model"] == "prajjwal1/bert-tiny"
    assert front["datasets"] == ["sentence-transformers/all-nli"]
    assert {"sentence-transformers", "sentence-similarity", "feature-extraction", "workbench",
            "loss:MultipleNegativesRankingLoss", "dataset_size:277277"} <= set(front["tags"])
    expected_names = [f"{kind}_{fn}" for fn in STS_FNS for kind in ("pearson", "spearman")]
    assert front["metrics"] == [*expected_names, "pearson_max", "spearman_max", "negative_mse"]

    (entry,) = front["model-index"]
    assert entry["name"] == "bert-tiny-nli"
    results = {r["dataset"]["name"]: r for r in entry["results"]}
    assert set(results) == set(evals)
    for name, metrics in evals.items():
        r = results[name]
        assert r["dataset"]["type"] == name
        got = {f"{name}_{m['type']}": m["value"] for m in r["metrics"]}
        assert got == metrics  # every metric, exact values
    assert results["sts-dev"]["task"] == {"type": "semantic-similarity", "name": "Semantic Similarity"}
    assert results["mse"]["task"] == {"type": "knowledge-distillation", "name": "Knowledge Distillation"}
    names = {m["type"]: m["name"] for m in results["sts-dev"]["metrics"]}
    assert names["pearson_cosine"] == "Pearson Cosine" and names["spearman_max"] == "Spearman Max"
    assert results["mse"]["metrics"][0]["name"] == "Negative MSE"


def test_front_matter_quotes_awkward_strings_and_floats():
    awkward = ['Note: "quoted" text', "- starts like a list item", "# not a comment", "yes", "null", "1e5",
               "it's a 'single' quote", "back\\slash and tab\t", "Émilie 🥞 ünïcödé", "odd \x85 \u2028 \x7f chars",
               "{braces}: [brackets], & *star !bang %percent @at `tick`", "  padded  "]
    values = {"tiny": 1e-05, "huge": 1.5e20, "neg": -0.0, "nan": float("nan"), "inf": float("inf"), "int": 5,
              "np": np.float32(0.8672)}
    evals = {"ev: 1": {f"ev: 1_{k}": v for k, v in values.items()}}
    front = front_matter(model_card(StandIn(), model_name='My "model": v2 # final', base_model="./local:base",
                                    evaluations=evals, widget_sentences=awkward, license="other"))
    assert front["model-index"][0]["name"] == 'My "model": v2 # final'
    assert front["base_model"] == "./local:base"
    assert "datasets" not in front and "dataset_size" not in " ".join(front["tags"])
    widget = front["widget"]
    assert [w["source_sentence"] for w in widget] == awkward[0::4]
    assert [s for w in widget for s in [w["source_sentence"], *w["sentences"]]] == awkward
    got = {m["type"]: m["value"] for m in front["model-index"][0]["results"][0]["metrics"]}
    assert got["tiny"] == 1e-05 and got["huge"] == 1.5e20 and got["int"] == 5
    assert math.isnan(got["nan"]) and got["inf"] == math.inf
    assert got["np"] == float(np.float32(0.8672))


def test_front_matter_without_optional_fields():
    front = front_matter(model_card(StandIn(), language=None))
    assert "language" not in front and "license" not in front and "model-index" not in front
    assert "metrics" not in front and "widget" not in front and "base_model" not in front
    assert front["tags"] == ["sentence-transformers", "sentence-similarity", "feature-extraction", "workbench"]


# --------------------------------------------------------------------------- body


def test_seed_b_numbers_render_where_expected():
    card = seed_b_card()
    assert "\n# bert-tiny-nli\n" in card
    for heading in ("## Model Details", "### Full Model Architecture", "## Usage", "## Evaluation",
                    "## Training Details", "### Training Hyperparameters", "### Training Logs",
                    "### Framework Versions", "## Citation"):
        assert "\n" + heading + "\n" in card, heading
    evaluation = section(card, "## Evaluation")
    dev, test = evaluation.split("* Dataset: `sts-test`")
    assert "* Dataset: `sts-dev`" in dev
    assert "| **spearman_cosine** | **0.7614** |" in dev
    assert "| **spearman_cosine** | **0.6775** |" in test
    details = section(card, "### Model Description")
    assert "- **Base model:** [prajjwal1/bert-tiny](https://huggingface.co/prajjwal1/bert-tiny)" in details
    assert "- **Maximum Sequence Length:** 384 tokens" in details
    assert "- **Output Dimensionality:** 256 dimensions" in details
    assert "- **Similarity Function:** Cosine Similarity" in details
    assert "[all-nli](https://huggingface.co/datasets/sentence-transformers/all-nli)" in details
    assert "- **Language:** en" in details and "- **License:** apache-2.0" in details
    assert "```\n" + repr(StandIn()) + "\n```" in section(card, "### Full Model Architecture")
    usage = section(card, "## Usage")
    assert "load_model('path/to/this/folder')" in usage and "SentenceTransformer('path/to/this/folder')" in usage
    assert "'A man is eating food.'," in usage and "# (3, 256)" in usage and "# (3, 3)" in usage
    assert "- **Hardware:** 1 x NVIDIA GeForce RTX 3090" in card
    assert "- **Training time:** 1.7 minutes (102 s)" in card
    intro = card.split("\n# bert-tiny-nli\n")[1].split("\n## ")[0]
    assert "256-dimensional" in intro and "prajjwal1/bert-tiny" in intro and "all-nli" in intro


def test_evaluation_tables_four_decimals_and_bold_primary():
    evals = {**SEED_B_EVALS, "mse": {"mse_negative_mse": -50.13}}
    card = seed_b_card(evaluations=evals, primary_metrics=None)  # defaults: spearman_cosine, negative_mse
    evaluation = section(card, "## Evaluation")
    blocks = evaluation.split("#### ")[1:]
    assert [b.split("\n")[0] for b in blocks] == ["Semantic Similarity", "Semantic Similarity", "Knowledge Distillation"]
    for block, (name, metrics) in zip(blocks, evals.items(), strict=True):
        rows = table_rows(block)
        assert len(rows) == len(metrics)
        for (label, value), (key, expected) in zip(rows, metrics.items(), strict=True):
            bold = label.startswith("**")
            assert bold == key.endswith(("_spearman_cosine", "_negative_mse"))
            assert label.strip("*") == key[len(name) + 1:]
            assert value.strip("*") == f"{expected:.4f}" and re.fullmatch(r"-?\d+\.\d{4}", value.strip("*"))
    assert "| **negative_mse** | **-50.1300** |" in evaluation
    # a primary metric named by the caller wins
    card = seed_b_card(primary_metrics={"sts-dev": "sts-dev_pearson_max"})
    dev = section(card, "## Evaluation").split("* Dataset: `sts-test`")[0]
    bold = [r for r in table_rows(dev) if r[0].startswith("**")]
    assert bold == [["**pearson_max**", f"**{SEED_B_EVALS['sts-dev']['sts-dev_pearson_max']:.4f}**"]]


def test_training_log_rows_and_best_row_bold():
    logs = section(seed_b_card(), "### Training Logs")
    header = next(line for line in logs.splitlines() if line.startswith("|"))
    assert header == "| Epoch | Step | Training Loss | sts-dev_spearman_cosine | sts-test_spearman_cosine |"
    rows = table_rows(logs)
    assert len(rows) == len(SEED_B_LOG)
    bold = [i for i, r in enumerate(rows) if all(c.startswith("**") and c.endswith("**") for c in r)]
    assert bold == [DEV_CURVE.index(max(DEV_CURVE))]
    assert rows[bold[0]][:4] == ["**0.9234**", "**1000**", "**2.1000**", "**0.7614**"]
    assert rows[0] == ["0.0923", "100", "-", "0.7247", "-"]  # no training loss logged yet
    assert rows[-1] == ["1.0000", "1083", "-", "-", "0.6775"]
    cells = [c.strip("*") for r in rows for c in (r[0], *r[2:])]
    assert all(c == "-" or re.fullmatch(r"\d+\.\d{4}", c) for c in cells)
    assert "bold row has the best `sts-dev_spearman_cosine`" in logs


def test_training_log_without_primary_metrics_shows_every_column():
    log = [{"epoch": 0.5, "step": 1, "training_loss": 0.5, "a": 0.1, "b": 0.2}, {"epoch": 1.0, "step": 2, "a": 0.3}]
    logs = section(model_card(StandIn(), training_log=log), "### Training Logs")
    assert "| Epoch | Step | Training Loss | a | b |" in logs
    assert table_rows(logs) == [["0.5000", "1", "0.5000", "0.1000", "0.2000"], ["1.0000", "2", "-", "0.3000", "-"]]
    assert "**" not in logs  # no primary metric: nothing to call best


def test_non_default_hyperparameters_are_exactly_the_changed_ones():
    assert non_default(SEED_B_CONFIG, DEFAULTS) == {"batch_size": 256, "precision": "bf16", "eval_every": 100}
    assert non_default({"x": True, "y": float("nan"), "z": 1.0}, {"x": 1, "y": float("nan"), "z": 1}) == {"x": True}
    hyper = section(seed_b_card(), "### Training Hyperparameters")
    changed = section(hyper.join(["\n### Training Hyperparameters\n", ""]), "#### Non-Default Hyperparameters")
    assert re.findall(r"- `(\w+)`: (.*)", changed) == [("batch_size", "256"), ("precision", "bf16"), ("eval_every", "100")]
    everything = hyper.split("<details><summary>Click to expand</summary>")[1].split("</details>")[0]
    assert re.findall(r"- `(\w+)`: (.*)", everything) == [(k, str(v)) for k, v in SEED_B_CONFIG.items()]
    # without defaults there is no non-default list, and nothing changed says so
    assert "Non-Default" not in seed_b_card(default_config=None)
    assert "- (none: all defaults)" in seed_b_card(train_config=DEFAULTS)


def test_dataset_section_samples_and_loss():
    data = section(seed_b_card(), "### Training Dataset")
    assert "* Dataset: [all-nli](https://huggingface.co/datasets/sentence-transformers/all-nli)" in data
    assert "* Size: 277,277 training samples" in data
    assert "* Columns: <code>anchor</code>, <code>positive</code>, and <code>negative</code>" in data
    rows = table_rows(data)
    assert len(rows) == 3 and all(len(r) == 3 for r in rows)  # the fourth sample is left out
    assert rows[0][0] == "<code>A person on a horse jumps over a broken down airplane.</code>"
    long = rows[2][0]
    assert long.endswith("...</code>") and "&#124;" in long and len(long) < 140
    assert rows[2][1] == "<code>&lt;b&gt;tags&lt;/b&gt; &amp; stuff</code>" and rows[2][2] == "<code>line break</code>"
    assert "* Loss: <code>MultipleNegativesRankingLoss</code> with these parameters:" in data
    params = data.split("```json")[1].split("```")[0]
    assert json.loads(params) == SEED_B_LOSS["params"]


def test_distillation_dataset_with_embedding_labels():
    data = DatasetInfo("wikipedia-en-sentences", 200_000, ("sentence", "label"),
                       samples=({"sentence": "Paris is the capital of France.", "label": np.linspace(-1, 1, 312)},),
                       location="/data/wiki.txt", loss="MSELoss")
    card = model_card(StandIn(dim=312), datasets=[data], loss={"name": "MSELoss", "params": {}},
                      evaluations={"mse": {"mse_negative_mse": -50.13}})
    section_text = section(card, "### Training Dataset")
    assert "* Dataset: `/data/wiki.txt`" in section_text
    assert "<code>[-1.0000, -0.9936, -0.9871, ...] (312 values)</code>" in section_text
    assert "* Loss: <code>MSELoss</code>\n" in section_text  # no parameters to show
    assert "dataset_size:200000" in front_matter(card)["tags"]
    assert "datasets" not in front_matter(card)  # a local path is no hub id


def test_citations_follow_the_loss():
    def bib(card: str) -> str:
        return section(card, "## Citation")

    mnrl = bib(seed_b_card())
    assert "Sentence-{BERT}: Sentence Embeddings using {S}iamese {BERT}-Networks" in mnrl
    assert "Efficient Natural Language Response Suggestion for Smart Reply" in mnrl and "year      = {2017}" in mnrl
    assert "Making Monolingual" not in mnrl
    mse = bib(model_card(StandIn(), loss={"name": "MSELoss", "params": {}}))
    assert "Making Monolingual Sentence Embeddings Multilingual using Knowledge Distillation" in mse
    assert "Smart Reply" not in mse
    plain = bib(model_card(StandIn(), loss={"name": "CoSENTLoss", "params": {}}))
    assert plain.count("```bibtex") == 1 and "Reimers, Nils and Gurevych, Iryna" in plain
    for entry in re.findall(r"```bibtex\n(.*?)```", mnrl + mse, re.S):
        assert entry.count("{") == entry.count("}")  # balanced braces


def test_pure_and_versions_read_gracefully(monkeypatch):
    assert seed_b_card() == seed_b_card()
    real = metadata.version

    def version(dist: str) -> str:
        if dist == "datasets":
            raise metadata.PackageNotFoundError(dist)
        return real(dist)

    monkeypatch.setattr(card_module.metadata, "version", version)
    versions = section(seed_b_card(), "### Framework Versions")
    assert "- Datasets: not installed" in versions
    assert f"- PyTorch: {real('torch')}" in versions and "- workbench: " in versions and "- Python: 3." in versions


def test_minimal_card_still_parses():
    card = minimal_card(StandIn(source="prajjwal1/bert-tiny"))
    assert front_matter(card)["base_model"] == "prajjwal1/bert-tiny"
    assert repr(StandIn()) in card
    assert "base_model" not in front_matter(minimal_card(StandIn(source="/tmp/local")))


# --------------------------------------------------------------------------- with a real model


def test_saved_card_does_not_break_loading(tmp_path: Path, tiny_bert):
    st = pytest.importorskip("sentence_transformers")
    model = tiny_bert(layers=1, dense=16, normalize=True)
    card = model_card(model, model_name="tiny: test", base_model="prajjwal1/bert-tiny", datasets=[SEED_B_DATA],
                      loss=SEED_B_LOSS, evaluations=SEED_B_EVALS, training_log=SEED_B_LOG,
                      widget_sentences=['A "quoted": sentence', "Another one."])
    assert "- **Output Dimensionality:** 16 dimensions" in card and repr(model) in card
    model.save(tmp_path / "m", card=card)
    assert (tmp_path / "m" / "README.md").read_text(encoding="utf-8") == card
    loaded = st.SentenceTransformer(str(tmp_path / "m"), device="cpu")
    sentences = ["A man is playing a guitar.", "A cat sleeps."]
    np.testing.assert_allclose(model.encode(sentences), loaded.encode(sentences), atol=1e-5)
