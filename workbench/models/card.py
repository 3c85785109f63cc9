"""Model cards (README.md) written next to the weights.

:func:`minimal_card` says what the model is and how to use it; after training, :func:`model_card`
writes the full card laid out like sentence-transformers' own (front matter with tags, metrics
and ``model-index`` for the hub; evaluation tables, data sets, hyper-parameters, training log).
"""

from __future__ import annotations

import html
import json
import math
import numbers
import platform
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from workbench.formatting import duration_words, metric, number
from workbench.similarity import SIMILARITY_FUNCTIONS

DEFAULT_SENTENCES = ("The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium.")
# As sentence-transformers' cards name them.
SIMILARITY_NAMES = dict(zip(SIMILARITY_FUNCTIONS, ("Cosine Similarity", "Dot Product", "Euclidean Distance",
                                                   "Manhattan Distance"), strict=True))
# model-index (task type, task name) for each kind of evaluator, told apart by its metric names.
TASK_STS = ("semantic-similarity", "Semantic Similarity")
TASK_MSE = ("knowledge-distillation", "Knowledge Distillation")
TASK_TRIPLET = ("triplet", "Triplet")
TASK_IR = ("information-retrieval", "Information Retrieval")
# When the caller names no primary metric: the first of these an evaluator reports.
PRIMARY_SUFFIXES = ("spearman_cosine", "negative_mse", "cosine_accuracy", "cosine_ndcg@10")
MAX_CELL = 100  # characters of a sample value shown in a table cell
LOG_FIXED = ("epoch", "step", "training_loss")
# Characters YAML does not allow raw in a double-quoted string (JSON leaves them as they are).
YAML_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff]")


def _bib(kind: str, key: str, **fields: str) -> str:
    fields = {**fields, "archiveprefix": "arXiv"} if "eprint" in fields else fields
    body = ",\n".join(f"  {name:<9} = {{{value}}}" for name, value in fields.items())
    return f"@{kind}{{{key},\n{body}\n}}"


SBERT_BIB = _bib(
    "inproceedings", "reimers2019sentencebert",
    title="Sentence-{BERT}: Sentence Embeddings using {S}iamese {BERT}-Networks",
    author="Reimers, Nils and Gurevych, Iryna", year="2019", eprint="1908.10084",
    booktitle="Proceedings of the 2019 Conference on Empirical Methods in Natural Language Processing (EMNLP)",
    publisher="Association for Computational Linguistics",
)
MNRL_BIB = _bib(
    "misc", "henderson2017smartreply", title="Efficient Natural Language Response Suggestion for Smart Reply",
    author="Henderson, Matthew and Al-Rfou, Rami and Strope, Brian and Sung, Yun-Hsuan and "
    "Luk{\\'a}cs, L{\\'a}szl{\\'o} and Guo, Ruiqi and Kumar, Sanjiv and Miklos, Balint and Kurzweil, Ray",
    year="2017", eprint="1705.00652",
)
GRADCACHE_BIB = _bib(
    "inproceedings", "gao2021gradcache",
    title="Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup",
    author="Gao, Luyu and Zhang, Yunyi and Han, Jiawei and Callan, Jamie", year="2021", eprint="2101.06983",
    booktitle="Proceedings of the 6th Workshop on Representation Learning for NLP (RepL4NLP)",
)
DISTILL_BIB = _bib(
    "inproceedings", "reimers2020multilingual",
    title="Making Monolingual Sentence Embeddings Multilingual using Knowledge Distillation",
    author="Reimers, Nils and Gurevych, Iryna", year="2020", eprint="2004.09813",
    booktitle="Proceedings of the 2020 Conference on Empirical Methods in Natural Language Processing (EMNLP)",
    publisher="Association for Computational Linguistics",
)
# Loss class name -> (heading, BibTeX) of the papers it comes from; Sentence-BERT is always cited.
LOSS_CITATIONS = {
    "MultipleNegativesRankingLoss": (("MultipleNegativesRankingLoss", MNRL_BIB),),
    "CachedMultipleNegativesRankingLoss": (("MultipleNegativesRankingLoss", MNRL_BIB),
                                           ("CachedMultipleNegativesRankingLoss", GRADCACHE_BIB)),
    "MSELoss": (("MSELoss", DISTILL_BIB),),
}


@dataclass(frozen=True)
class DatasetInfo:
    """What the card says about one training data set.

    Example:
        >>> DatasetInfo("all-nli", 277_277, ("anchor", "positive", "negative"), loss="MSELoss").size
        277277
    """

    name: str                       # e.g. "all-nli (SNLI dev+test triplets)"
    size: int                       # number of training samples
    columns: tuple[str, ...]        # e.g. ("anchor", "positive", "negative")
    samples: tuple[dict, ...] = ()  # up to 3 example rows, column -> value
    location: str | None = None     # hub id or local path
    loss: str | None = None         # loss class name used on this data set (the card's loss by default)


def architecture(model: Any) -> str:
    """A plain-text description of the module chain, one module per line."""
    return repr(model)


def minimal_card(model: Any) -> str:
    """A short README.md with YAML front matter, architecture and usage."""
    base = getattr(model, "source", None)
    front: dict[str, Any] = {
        "library_name": "sentence-transformers", "pipeline_tag": "sentence-similarity",
        "tags": ["sentence-transformers", "sentence-similarity", "feature-extraction", "workbench"],
        **({"base_model": base} if _hub_id(base) else {}),
    }
    return "\n".join([
        "---", _yaml(front), "---", "", "# Sentence embedding model", "",
        f"Made with workbench. It maps sentences to a {model.dim}-dimensional vector space "
        f"(similarity: {model.similarity_fn_name}); inputs are truncated to {model.max_seq_length} tokens.",
        "", "## Architecture", "", "```", architecture(model), "```", "", "## Usage", "",
        _usage(model, "path/to/this/folder", DEFAULT_SENTENCES[:2]), "",
    ])


def model_card(
    model: Any, *, model_name: str | None = None, base_model: str | None = None,
    datasets: Sequence[DatasetInfo] = (), loss: dict | None = None,
    train_config: dict | None = None, default_config: dict | None = None,
    evaluations: dict[str, dict[str, float]] | None = None, primary_metrics: dict[str, str] | None = None,
    training_log: Sequence[dict] = (), hardware: str | None = None, training_seconds: float | None = None,
    language: str | None = "en", license: str | None = None, widget_sentences: Sequence[str] = (),
    setting_changes: Sequence[dict] = (), evaluators: Mapping[str, str] | None = None,
) -> str:
    """The full README.md model card, as sentence-transformers writes one after training.

    Pure: it reads the model's ``dim``, ``max_seq_length``, ``similarity_fn_name`` and ``repr``;
    the same inputs give the same text, except the framework versions read at call time.

    Args:
        model: the embedding model (or anything with those attributes).
        model_name: the title and ``model-index`` name; a hub id here also goes in the usage code.
        base_model: the model it was fine-tuned from (hub id or path).
        datasets: the training data sets.
        loss: ``{"name": class name, "params": {...}}``, as a workbench loss's ``config()`` gives.
        train_config: all hyper-parameters, a flat dict of plain values.
        default_config: their defaults; the values that differ are listed separately.
        evaluations: evaluator name -> flat metrics with prefixed keys
            (``{"sts-dev": {"sts-dev_spearman_cosine": 0.7614, ...}}``).
        primary_metrics: evaluator name -> primary key (bold in the tables); by default the first
            of ``spearman_cosine``, ``negative_mse``, ``cosine_accuracy`` the evaluator reports.
        training_log: rows ``{"epoch", "step", "training_loss", <metric key>: value, ...}``; the
            table shows the primary metrics when the log has any of them, else every metric, and
            the row with the best first primary metric in bold.
        hardware: e.g. ``"1 x NVIDIA GeForce RTX 3090"``.
        training_seconds: wall time of training.
        language: a language code, or None.
        license: a license id, or None.
        widget_sentences: example sentences for the hub widget (groups of up to 4: one source
            sentence, the rest compared with it) and the usage code.
        setting_changes: ``[{"step": 10, "changes": {"train.lr": [5e-05, 0.01]}}, ...]``: settings a
            resumed run changed (the hyper-parameters listed are the ones of the last part).
        evaluators: evaluator name -> what measured it (a class name such as
            ``"InformationRetrievalEvaluator"``, optionally with its data: ``"STSEvaluator on STS-B
            test"``), shown under the evaluation's table heading.

    Returns:
        YAML front matter followed by Markdown.

    Example:
        >>> from workbench import load_model
        >>> model = load_model("all-MiniLM-L6-v2")
        >>> card = model_card(model, model_name="my-minilm", base_model="sentence-transformers/all-MiniLM-L6-v2",
        ...                   evaluations={"sts-dev": {"sts-dev_spearman_cosine": 0.8203}})
        >>> card.startswith("---\\nlanguage:"), "| **spearman_cosine** | **0.8203** |" in card
        (True, True)
        >>> print(card[card.index("# my-minilm"):].splitlines()[0])
        # my-minilm
    """
    evaluations = {name: {k: float(v) for k, v in m.items()} for name, m in (evaluations or {}).items() if m}
    primary = {name: _primary(name, m, (primary_metrics or {}).get(name)) for name, m in evaluations.items()}
    loss_names = list(dict.fromkeys([d.loss for d in datasets if d.loss] + ([loss["name"]] if loss else [])))
    title = model_name or "Sentence embedding model"
    front = _front_matter(title, base_model, datasets, loss_names, evaluations, language, license,
                          widget_sentences)
    parts = [
        "---", _yaml(front), "---", "", f"# {title}", "", _description(model, base_model, datasets), "",
        "## Model Details", "", "### Model Description", "",
        _model_details(model, base_model, datasets, language, license), "",
        "### Full Model Architecture", "", "```", architecture(model), "```", "", "## Usage", "",
        _usage(model, model_name if _hub_id(model_name) else "path/to/this/folder",
               tuple(widget_sentences[:3]) or DEFAULT_SENTENCES), "",
    ]
    if evaluations:
        parts += ["## Evaluation", "", "### Metrics", ""]
        for name, metrics in evaluations.items():
            rows = [(f"**{_short(name, k)}**", f"**{_num(v)}**") if k == primary[name] else (_short(name, k), _num(v))
                    for k, v in metrics.items()]
            parts += [f"#### {_task(metrics)[1]}", "", f"* Dataset: `{name}`"]
            if (evaluators or {}).get(name):
                parts += [f"* Evaluated with {_evaluated_with(evaluators[name])}"]
            parts += ["", _table(["Metric", "Value"], rows), ""]
    parts += ["## Training Details", ""]
    if datasets:
        parts += [f"### Training Dataset{'s' if len(datasets) > 1 else ''}", ""]
        parts += [_dataset_section(d, loss) for d in datasets]
    if train_config:
        parts += [_hyperparameters(train_config, default_config), ""]
    if setting_changes:
        rows = [(f"after step {c['step']}", f"`{key}`", f"`{before!r}`", f"`{after!r}`")
                for c in setting_changes for key, (before, after) in c["changes"].items()]
        parts += ["### Settings Changed During Training", "",
                  "The run was resumed with other settings; the hyper-parameters above are the ones in force at the end.",
                  "", _table(["When", "Setting", "Before", "After"], rows), ""]
    if training_log:
        parts += ["### Training Logs", "", _log_table(training_log, [p for p in primary.values() if p]), ""]
    if hardware or training_seconds is not None:
        parts += ["### Training Hardware and Time", ""]
        parts += [f"- **Hardware:** {hardware}"] if hardware else []
        parts += [f"- **Training time:** {duration_words(training_seconds)}"] if training_seconds is not None else []
        parts += [""]
    parts += ["### Framework Versions", "", *(f"- {k}: {v}" for k, v in framework_versions().items()), ""]
    citations = {"Sentence Transformers": SBERT_BIB}
    for name in loss_names:
        citations.update(LOSS_CITATIONS.get(name, ()))
    parts += ["## Citation", "", "### BibTeX", ""]
    for heading, bib in citations.items():
        parts += [f"#### {heading}", "", "```bibtex", bib, "```", ""]
    return "\n".join(parts)


def non_default(config: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``config`` that differ from ``defaults`` (or have none), in ``config``'s order."""
    def same(a: Any, b: Any) -> bool:
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            return True
        if isinstance(a, bool) != isinstance(b, bool):  # True == 1 in Python, not as a setting
            return False
        return a == b

    return {k: v for k, v in config.items() if k not in defaults or not same(v, defaults[k])}


def framework_versions() -> dict[str, str]:
    """Versions of Python, workbench and the libraries below it ("not installed" when absent)."""
    from workbench._version import __version__

    versions = {"Python": platform.python_version(), "workbench": __version__}
    for label, dist in (("PyTorch", "torch"), ("Transformers", "transformers"),
                        ("Tokenizers", "tokenizers"), ("Datasets", "datasets")):
        try:
            versions[label] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[label] = "not installed"
    return versions


# --------------------------------------------------------------------------- sections


def _front_matter(
    title: str, base_model: str | None, datasets: Sequence[DatasetInfo], loss_names: list[str],
    evaluations: dict[str, dict[str, float]], language: str | None, license: str | None,
    widget_sentences: Sequence[str],
) -> dict[str, Any]:
    front: dict[str, Any] = {"language": [language]} if language else {}
    front.update({"license": license} if license else {})
    front.update({"library_name": "sentence-transformers", "pipeline_tag": "sentence-similarity"})
    front["tags"] = ["sentence-transformers", "sentence-similarity", "feature-extraction", "workbench",
                     *(f"loss:{name}" for name in loss_names)]
    if datasets:
        front["tags"].append(f"dataset_size:{sum(d.size for d in datasets)}")
    front.update({"base_model": base_model} if base_model else {})
    hub_datasets = list(dict.fromkeys(d.location for d in datasets if _hub_id(d.location)))
    front.update({"datasets": hub_datasets} if hub_datasets else {})
    if evaluations:
        front["metrics"] = list(dict.fromkeys(_short(n, k) for n, m in evaluations.items() for k in m))
    groups = [widget_sentences[i:i + 4] for i in range(0, len(widget_sentences), 4)]
    widget = [{"source_sentence": g[0], "sentences": list(g[1:])} for g in groups if len(g) > 1]
    front.update({"widget": widget} if widget else {})
    if evaluations:
        front["model-index"] = [{"name": title, "results": [{
            "task": {"type": _task(metrics)[0], "name": _task(metrics)[1]},
            "dataset": {"name": name, "type": name},
            "metrics": [{"type": _short(name, k), "value": v, "name": _pretty(_short(name, k))}
                        for k, v in metrics.items()],
        } for name, metrics in evaluations.items()]}]
    return front


def _description(model: Any, base_model: str | None, datasets: Sequence[DatasetInfo]) -> str:
    origin = f" fine-tuned from {_link(base_model, base_model, 'https://huggingface.co/')}" if base_model else ""
    if datasets:
        names = [_link(d.name, d.location) for d in datasets]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        origin += f" on the {listed} data set{'s' if len(names) > 1 else ''}"
    fn = SIMILARITY_NAMES.get(model.similarity_fn_name, model.similarity_fn_name)
    return (f"A sentence embedding model{origin}, made with workbench and saved in the "
            f"[sentence-transformers](https://www.sbert.net) layout. It maps sentences and short paragraphs "
            f"to a {model.dim}-dimensional dense vector space, compared by {fn.lower()}, for semantic "
            "textual similarity, semantic search, paraphrase mining, clustering and classification.")


def _model_details(model: Any, base_model: str | None, datasets: Sequence[DatasetInfo],
                   language: str | None, license: str | None) -> str:
    lines = ["- **Model Type:** Sentence Transformer (made with workbench)"]
    lines += [f"- **Base model:** {_link(base_model, base_model, 'https://huggingface.co/')}"] if base_model else []
    lines += [f"- **Maximum Sequence Length:** {model.max_seq_length} tokens",
              f"- **Output Dimensionality:** {model.dim} dimensions",
              f"- **Similarity Function:** {SIMILARITY_NAMES.get(model.similarity_fn_name, model.similarity_fn_name)}"]
    if datasets:
        lines.append(f"- **Training Dataset{'s' if len(datasets) > 1 else ''}:**")
        lines += [f"    - {_link(d.name, d.location)}" for d in datasets]
    lines += [f"- **Language:** {language}"] if language else []
    lines += [f"- **License:** {license}"] if license else []
    return "\n".join(lines)


def _usage(model: Any, model_id: str, sentences: Sequence[str]) -> str:
    n = len(sentences)
    listed = "".join(f"    {s!r},\n" for s in sentences)
    body = (f"sentences = [\n{listed}]\nembeddings = model.encode(sentences)\nprint(embeddings.shape)\n"
            f"# ({n}, {model.dim})\n\nsimilarities = model.similarity(embeddings, embeddings)\n"
            f"print(similarities.shape)\n# ({n}, {n})\n")
    return ("### With workbench\n\n```python\nfrom workbench import load_model\n\n"
            f"model = load_model({model_id!r})\n{body}```\n\n"
            "### With sentence-transformers\n\nThe folder uses the sentence-transformers layout:\n\n"
            "```bash\npip install -U sentence-transformers\n```\n\n"
            "```python\nfrom sentence_transformers import SentenceTransformer\n\n"
            f"model = SentenceTransformer({model_id!r})\n{body}```")


def _dataset_section(d: DatasetInfo, loss: dict | None) -> str:
    columns = tuple(d.columns) or (tuple(d.samples[0]) if d.samples else ())
    lines = [f"#### {d.name}", ""]
    if d.location:
        lines.append(f"* Dataset: {_link(d.name, d.location) if _hub_id(d.location) else f'`{d.location}`'}")
    lines.append(f"* Size: {d.size:,} training samples")
    code = [f"<code>{html.escape(c)}</code>" for c in columns]
    if code:
        joined = " and ".join(code) if len(code) <= 2 else ", ".join(code[:-1]) + ", and " + code[-1]
        lines.append(f"* Columns: {joined}")
    if d.samples and columns:
        rows = [[f"<code>{_cell(row.get(c, ''))}</code>" for c in columns] for row in d.samples[:3]]
        lines += ["* Samples:", *("  " + line for line in _table([_cell(c) for c in columns], rows).splitlines())]
    loss_name = d.loss or (loss or {}).get("name")
    if loss_name:
        lines.append(f"* Loss: <code>{html.escape(loss_name)}</code>")
        if loss and loss.get("name") == loss_name and loss.get("params"):
            lines[-1] += " with these parameters:"
            params = json.dumps(loss["params"], indent=4, default=str).splitlines()
            lines += ["  ```json", *("  " + line for line in params), "  ```"]
    return "\n".join(lines) + "\n"


def _hyperparameters(config: Mapping[str, Any], defaults: Mapping[str, Any] | None) -> str:
    lines = ["### Training Hyperparameters", ""]
    if defaults is not None:
        changed = [f"- `{k}`: {v}" for k, v in non_default(config, defaults).items()]
        lines += ["#### Non-Default Hyperparameters", "", *(changed or ["- (none: all defaults)"]), ""]
    lines += ["#### All Hyperparameters", "", "<details><summary>Click to expand</summary>", ""]
    return "\n".join([*lines, *(f"- `{k}`: {v}" for k, v in config.items()), "", "</details>"])


def _log_table(rows: Sequence[Mapping[str, Any]], primaries: list[str]) -> str:
    seen = list(dict.fromkeys(k for row in rows for k in row if k not in LOG_FIXED))
    shown = [p for p in primaries if p in seen] or seen
    # The best row by the first primary metric the log has a number for (all are higher-is-better).
    best, best_key = None, None
    for key in (p for p in primaries if p in seen):
        scored = [(row[key], -i) for i, row in enumerate(rows) if _finite(row.get(key))]
        if scored:
            best, best_key = -max(scored)[1], key  # the first row among ties
            break
    body = []
    for i, row in enumerate(rows):
        cells = [_num(row.get("epoch")), _num(row.get("step"), ""), _num(row.get("training_loss")),
                 *(_num(row.get(k)) for k in shown)]
        body.append([f"**{c}**" for c in cells] if i == best else cells)
    table = _table(["Epoch", "Step", "Training Loss", *shown], body)
    return table + (f"\n\n* The bold row has the best `{best_key}`." if best_key else "")


# --------------------------------------------------------------------------- small helpers


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + ":--|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _primary(name: str, metrics: Mapping[str, float], given: str | None) -> str | None:
    if given:
        return given if given in metrics else next((k for k in metrics if _short(name, k) == given), None)
    return next((k for s in PRIMARY_SUFFIXES for k in metrics if _short(name, k) == s), None)


def _task(metrics: Mapping[str, float]) -> tuple[str, str]:
    if any(k.endswith("negative_mse") for k in metrics):
        return TASK_MSE
    if any(re.search(r"_(ndcg|mrr|map)@\d+$", k) for k in metrics):
        return TASK_IR
    return TASK_TRIPLET if any(k.endswith("accuracy") for k in metrics) else TASK_STS


def _short(name: str, key: str) -> str:
    """The metric without its evaluator's prefix: ``sts-dev_pearson_cosine`` -> ``pearson_cosine``."""
    return key[len(name) + 1:] if name and key.startswith(name + "_") else key


def _pretty(metric: str) -> str:
    upper = {"mse": "MSE", "mae": "MAE", "map": "MAP", "mrr": "MRR", "ndcg": "NDCG"}

    def word(w: str) -> str:
        base, at, k = w.partition("@")  # retrieval metrics: ndcg@10 -> NDCG@10
        return upper.get(base, base.capitalize()) + at + k

    return " ".join(word(w) for w in metric.split("_"))


def _evaluated_with(text: str) -> str:
    """``"STSEvaluator on STS-B test"`` -> ``<code>STSEvaluator</code> on STS-B test`` (escaped)."""
    head, space, rest = text.partition(" ")
    return f"<code>{html.escape(head)}</code>{space}{html.escape(rest)}"


def _hub_id(value: Any) -> bool:
    """True for an ``org/name`` hub id (a local path starts with ``/``, ``.`` or ``~``, or has more parts)."""
    return isinstance(value, str) and not value.startswith((".", "~")) \
        and re.fullmatch(r"[\w.-]+/[\w.-]+", value) is not None


def _link(label: str, hub_id: str | None, url: str = "https://huggingface.co/datasets/") -> str:
    return f"[{label}]({url}{hub_id})" if _hub_id(hub_id) else (f"`{label}`" if label == hub_id else label)


def _finite(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _num(value: Any, fmt: str = ".4f") -> str:
    """4 decimals for a number (``fmt`` to change), ``-`` for a missing one."""
    if value is None or value == "":
        return "-"
    return format(value, fmt) if isinstance(value, numbers.Real) and not isinstance(value, bool) else str(value)


def _cell(value: Any) -> str:
    """A sample value in a Markdown table cell: one line, at most MAX_CELL characters, escaped."""
    if hasattr(value, "tolist"):  # numpy arrays and tensors, e.g. a teacher embedding as label
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        shown = ", ".join(metric(x) if isinstance(x, float) else str(x) for x in value[:3])
        text = f"[{shown}, ...] ({len(value)} values)" if len(value) > 3 else f"[{shown}]"
    else:
        text = number(value)
    text = " ".join(text.split())
    text = text[:MAX_CELL].rstrip() + "..." if len(text) > MAX_CELL else text
    return html.escape(text).replace("|", "&#124;")


# --------------------------------------------------------------------------- a little YAML writer


def _yaml(value: Mapping[str, Any] | Sequence[Any], indent: int = 0) -> str:
    """Block-style YAML for nested dicts/lists of plain values (keys are ours; strings are quoted)."""
    pad, lines = " " * indent, []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if _nested(item):  # a list sits at its key's indentation, a mapping one level in
                lines += [f"{pad}{key}:", _yaml(item, indent + 2 if isinstance(item, Mapping) else indent)]
            else:
                lines.append(f"{pad}{key}: {_yaml_scalar(item)}")
        return "\n".join(lines)
    for item in value:  # a nested block's first line goes on the dash's line
        lines.append(pad + "- " + (_yaml(item, indent + 2)[indent + 2:] if _nested(item) else _yaml_scalar(item)))
    return "\n".join(lines)


def _nested(value: Any) -> bool:
    return isinstance(value, (Mapping, list, tuple)) and len(value) > 0


def _yaml_scalar(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        x = float(value)
        if not math.isfinite(x):
            return ".nan" if math.isnan(x) else (".inf" if x > 0 else "-.inf")
        # PyYAML (YAML 1.1) reads "1e-05" as a string: a float needs a dot and a signed exponent.
        mantissa, e, exponent = repr(x).partition("e")
        return f"{mantissa}.0e{exponent}" if e and "." not in mantissa else repr(x)
    if isinstance(value, (Mapping, list, tuple)):
        return "{}" if isinstance(value, Mapping) else "[]"
    # A JSON string is a YAML double-quoted string once the characters YAML forbids are escaped.
    return YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", json.dumps(str(value), ensure_ascii=False))
