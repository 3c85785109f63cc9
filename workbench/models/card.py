"""Model cards (README.md) written next to the weights.

The minimal card says what the model is and how to use it from both libraries; training
writes the full card with :func:`model_card` (evaluation tables, hyper-parameters, training
log), laid out like the cards sentence-transformers writes, so the Hugging Face hub reads its
front matter (tags, metrics, ``model-index``) the same way.
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

DEFAULT_SENTENCES = ("The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium.")
SIMILARITY_NAMES = {
    "cosine": "Cosine Similarity", "dot": "Dot Product",
    "euclidean": "Euclidean Distance", "manhattan": "Manhattan Distance",
}
# (task type, task name) for the model-index, by the kind of metrics an evaluator reports.
TASKS = {
    "sts": ("semantic-similarity", "Semantic Similarity"),
    "mse": ("knowledge-distillation", "Knowledge Distillation"),
    "triplet": ("triplet", "Triplet"),
}
# Preferred primary metrics when the caller names none: the evaluators' own defaults.
PRIMARY_SUFFIXES = ("spearman_cosine", "negative_mse", "cosine_accuracy")
MAX_CELL = 100  # characters of a sample shown in a table cell

def _bib(kind: str, key: str, **fields: str) -> str:
    if "eprint" in fields:
        fields["archiveprefix"] = "arXiv"
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
# Loss class name -> the papers it comes from (Sentence-BERT is always cited).
LOSS_CITATIONS = {
    "MultipleNegativesRankingLoss": (("MultipleNegativesRankingLoss", MNRL_BIB),),
    "CachedMultipleNegativesRankingLoss": (
        ("MultipleNegativesRankingLoss", MNRL_BIB), ("CachedMultipleNegativesRankingLoss", GRADCACHE_BIB),
    ),
    "MSELoss": (("MSELoss", DISTILL_BIB),),
}


@dataclass(frozen=True)
class DatasetInfo:
    """What the card says about one training data set.

    Args:
        name: a readable name, e.g. ``"all-nli (SNLI dev+test triplets)"``.
        size: number of training samples.
        columns: column names, e.g. ``("anchor", "positive", "negative")``.
        samples: up to 3 example rows (``column -> value``).
        location: a hub id (``"sentence-transformers/all-nli"``) or a local path.
        loss: the loss class name used on this data set (the card's ``loss`` by default).

    Example:
        >>> DatasetInfo("all-nli", 277277, ("anchor", "positive", "negative")).size
        277277
    """

    name: str
    size: int
    columns: tuple[str, ...]
    samples: tuple[dict, ...] = ()
    location: str | None = None
    loss: str | None = None


def architecture(model: Any) -> str:
    """A plain-text description of the module chain, one module per line."""
    return repr(model)


def minimal_card(model: Any) -> str:
    """A short README.md with YAML front matter, architecture and usage."""
    base = getattr(model, "source", None)
    front: dict[str, Any] = {
        "library_name": "sentence-transformers", "pipeline_tag": "sentence-similarity",
        "tags": ["sentence-transformers", "sentence-similarity", "feature-extraction", "workbench"],
    }
    if _hub_id(base):
        front["base_model"] = base
    return "\n".join([
        "---", _yaml(front), "---", "", "# Sentence embedding model", "",
        f"Made with workbench. It maps sentences to a {model.dim}-dimensional vector space "
        f"(similarity: {model.similarity_fn_name}); inputs are truncated to {model.max_seq_length} tokens.",
        "", "## Architecture", "", "```", architecture(model), "```", "", "## Usage", "",
        _usage(model, "path/to/this/folder", DEFAULT_SENTENCES[:2]), "",
    ])


def model_card(
    model: Any,
    *,
    model_name: str | None = None,
    base_model: str | None = None,
    datasets: Sequence[DatasetInfo] = (),
    loss: dict | None = None,
    train_config: dict | None = None,
    default_config: dict | None = None,
    evaluations: dict[str, dict[str, float]] | None = None,
    primary_metrics: dict[str, str] | None = None,
    training_log: Sequence[dict] = (),
    hardware: str | None = None,
    training_seconds: float | None = None,
    language: str | None = "en",
    license: str | None = None,
    widget_sentences: Sequence[str] = (),
) -> str:
    """The full README.md model card, as sentence-transformers writes it after training.

    Pure: it reads the model's ``dim``, ``max_seq_length``, ``similarity_fn_name`` and
    ``repr``, and the same inputs give the same text (only the framework versions, read at
    call time, may differ). Nothing is written or printed.

    Args:
        model: the embedding model (or anything with those attributes).
        model_name: the title and the ``model-index`` name; a hub id here is also used in the
            usage snippets.
        base_model: the model it was fine-tuned from (a hub id or a path).
        datasets: the training data sets.
        loss: ``{"name": class name, "params": {...}}`` (what a workbench loss's ``config()`` gives).
        train_config: all hyper-parameters, a flat dict of plain values.
        default_config: the defaults; hyper-parameters that differ are listed separately.
        evaluations: evaluator name -> its flat metrics with prefixed keys
            (``{"sts-dev": {"sts-dev_spearman_cosine": 0.76, ...}}``).
        primary_metrics: evaluator name -> primary key, shown in bold; by default the first of
            ``spearman_cosine``, ``negative_mse``, ``cosine_accuracy`` that the evaluator reports.
        training_log: rows ``{"epoch", "step", "training_loss", <metric>: value, ...}``; the
            table shows the primary metrics when the log holds any of them, else every metric.
        hardware: e.g. ``"1 x NVIDIA RTX 3090"``.
        training_seconds: wall time of training.
        language: language code, or None.
        license: license id, or None.
        widget_sentences: example sentences for the hub's widget and the usage snippets.

    Returns:
        The card's text: YAML front matter followed by Markdown.
    """
    evaluations = {name: {k: float(v) for k, v in m.items()} for name, m in (evaluations or {}).items() if m}
    primary = {name: _primary(name, metrics, (primary_metrics or {}).get(name))
               for name, metrics in evaluations.items()}
    loss_names = list(dict.fromkeys([d.loss for d in datasets if d.loss] + ([loss["name"]] if loss else [])))
    title = model_name or "Sentence embedding model"
    model_id = model_name if _hub_id(model_name) else "path/to/this/folder"
    sentences = tuple(widget_sentences[:3]) or DEFAULT_SENTENCES

    parts = [
        "---", _yaml(_front_matter(title, base_model, datasets, loss_names, evaluations, language,
                                   license, widget_sentences)), "---", "",
        f"# {title}", "", _description(model, base_model, datasets), "",
        "## Model Details", "", "### Model Description", "",
        _model_details(model, base_model, datasets, language, license), "",
        "### Full Model Architecture", "", "```", architecture(model), "```", "",
        "## Usage", "", _usage(model, model_id, sentences), "",
    ]
    if evaluations:
        parts += ["## Evaluation", "", "### Metrics", ""]
        for name, metrics in evaluations.items():
            parts += [f"#### {_task(metrics)[1]}", "", f"* Dataset: `{name}`", "",
                      _metrics_table(name, metrics, primary[name]), ""]
    parts += ["## Training Details", ""]
    if datasets:
        parts += [f"### Training Dataset{'s' if len(datasets) > 1 else ''}", ""]
        parts += [_dataset_section(d, loss) for d in datasets]
    if train_config:
        parts += [_hyperparameters(train_config, default_config), ""]
    if training_log:
        parts += ["### Training Logs", "", _log_table(training_log, list(primary.values())), ""]
    if hardware or training_seconds is not None:
        parts += ["### Training Hardware and Time", ""]
        parts += [f"- **Hardware:** {hardware}"] if hardware else []
        parts += [f"- **Training time:** {_duration(training_seconds)}"] if training_seconds is not None else []
        parts += [""]
    parts += ["### Framework Versions", "", *[f"- {k}: {v}" for k, v in framework_versions().items()], ""]
    parts += ["## Citation", "", "### BibTeX", ""]
    for heading, bib in _citations(loss_names):
        parts += [f"#### {heading}", "", "```bibtex", bib, "```", ""]
    return "\n".join(parts)


def framework_versions() -> dict[str, str]:
    """Versions of Python and the libraries the model was trained with ("not installed" if absent)."""
    from workbench import __version__

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
    front: dict[str, Any] = {}
    if language:
        front["language"] = [language]
    if license:
        front["license"] = license
    front.update({"library_name": "sentence-transformers", "pipeline_tag": "sentence-similarity"})
    tags = ["sentence-transformers", "sentence-similarity", "feature-extraction", "workbench"]
    tags += [f"loss:{name}" for name in loss_names]
    if datasets:
        tags.append(f"dataset_size:{sum(d.size for d in datasets)}")
    front["tags"] = tags
    if base_model:
        front["base_model"] = base_model
    hub_datasets = list(dict.fromkeys(d.location for d in datasets if _hub_id(d.location)))
    if hub_datasets:
        front["datasets"] = hub_datasets
    if evaluations:
        front["metrics"] = list(dict.fromkeys(_short(n, k) for n, m in evaluations.items() for k in m))
    widget = [{"source_sentence": group[0], "sentences": list(group[1:])}
              for group in (widget_sentences[i:i + 4] for i in range(0, len(widget_sentences), 4))
              if len(group) > 1]
    if widget:
        front["widget"] = widget
    if evaluations:
        results = [{
            "task": dict(zip(("type", "name"), _task(metrics), strict=True)),
            "dataset": {"name": name, "type": name},
            "metrics": [{"type": _short(name, k), "value": v, "name": _pretty(_short(name, k))}
                        for k, v in metrics.items()],
        } for name, metrics in evaluations.items()]
        front["model-index"] = [{"name": title, "results": results}]
    return front


def _description(model: Any, base_model: str | None, datasets: Sequence[DatasetInfo]) -> str:
    origin = f" fine-tuned from {_link_model(base_model)}" if base_model else ""
    if datasets:
        names = [_link_dataset(d) for d in datasets]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        origin += f" on the {listed} data set{'s' if len(names) > 1 else ''}"
    fn = SIMILARITY_NAMES.get(model.similarity_fn_name, model.similarity_fn_name)
    return (f"A sentence embedding model{origin}, made with workbench and saved in the "
            f"[sentence-transformers](https://www.sbert.net) layout. It maps sentences and short "
            f"paragraphs to a {model.dim}-dimensional dense vector space, compared with {fn.lower()}, "
            "for semantic textual similarity, semantic search, paraphrase mining, clustering and "
            "classification.")


def _model_details(model: Any, base_model: str | None, datasets: Sequence[DatasetInfo],
                   language: str | None, license: str | None) -> str:
    lines = ["- **Model Type:** Sentence Transformer (made with workbench)"]
    if base_model:
        lines.append(f"- **Base model:** {_link_model(base_model)}")
    lines += [
        f"- **Maximum Sequence Length:** {model.max_seq_length} tokens",
        f"- **Output Dimensionality:** {model.dim} dimensions",
        f"- **Similarity Function:** {SIMILARITY_NAMES.get(model.similarity_fn_name, model.similarity_fn_name)}",
    ]
    if datasets:
        lines.append(f"- **Training Dataset{'s' if len(datasets) > 1 else ''}:**")
        lines += [f"    - {_link_dataset(d)}" for d in datasets]
    lines += [f"- **Language:** {language}"] if language else []
    lines += [f"- **License:** {license}"] if license else []
    return "\n".join(lines)


def _usage(model: Any, model_id: str, sentences: Sequence[str]) -> str:
    n = len(sentences)
    listed = "".join(f"    {s!r},\n" for s in sentences)
    body = (f"sentences = [\n{listed}]\nembeddings = model.encode(sentences)\nprint(embeddings.shape)\n"
            f"# ({n}, {model.dim})\n\nsimilarities = model.similarity(embeddings, embeddings)\n"
            f"print(similarities.shape)\n# ({n}, {n})\n")
    return (
        "### With workbench\n\n```python\nfrom workbench import load_model\n\n"
        f"model = load_model({model_id!r})\n{body}```\n\n"
        "### With sentence-transformers\n\nThe folder uses the sentence-transformers layout:\n\n"
        "```bash\npip install -U sentence-transformers\n```\n\n"
        "```python\nfrom sentence_transformers import SentenceTransformer\n\n"
        f"model = SentenceTransformer({model_id!r})\n{body}```"
    )


def _metrics_table(name: str, metrics: Mapping[str, float], primary: str | None) -> str:
    rows = ["| Metric | Value |", "|:--|:--|"]
    for key, value in metrics.items():
        label, number = _short(name, key), _num(value)
        if key == primary:
            label, number = f"**{label}**", f"**{number}**"
        rows.append(f"| {label} | {number} |")
    return "\n".join(rows)


def _dataset_section(d: DatasetInfo, loss: dict | None) -> str:
    columns = tuple(d.columns) or (tuple(d.samples[0]) if d.samples else ())
    lines = [f"#### {d.name}", ""]
    if d.location:
        lines.append(f"* Dataset: {_link_dataset(d) if _hub_id(d.location) else f'`{d.location}`'}")
    lines.append(f"* Size: {d.size:,} training samples")
    if columns:
        code = [f"<code>{html.escape(c)}</code>" for c in columns]
        joined = code[0] if len(code) == 1 else (" and ".join(code) if len(code) == 2
                                                 else ", ".join(code[:-1]) + ", and " + code[-1])
        lines.append(f"* Columns: {joined}")
    if d.samples and columns:
        lines += ["* Samples:", "  | " + " | ".join(_cell(c) for c in columns) + " |",
                  "  |" + ":--|" * len(columns)]
        lines += ["  | " + " | ".join(f"<code>{_cell(row.get(c, ''))}</code>" for c in columns) + " |"
                  for row in d.samples[:3]]
    loss_name = d.loss or (loss or {}).get("name")
    if loss_name:
        lines.append(f"* Loss: <code>{html.escape(loss_name)}</code>")
        if loss and loss.get("name") == loss_name and loss.get("params"):
            params = json.dumps(loss["params"], indent=4, sort_keys=False, default=str)
            lines[-1] += " with these parameters:"
            lines += ["  ```json", *("  " + line for line in params.splitlines()), "  ```"]
    return "\n".join(lines) + "\n"


def _hyperparameters(config: Mapping[str, Any], defaults: Mapping[str, Any] | None) -> str:
    lines = ["### Training Hyperparameters", ""]
    if defaults is not None:
        changed = non_default(config, defaults)
        lines += ["#### Non-Default Hyperparameters", ""]
        lines += [f"- `{k}`: {_plain(v)}" for k, v in changed.items()] or ["- (none: every value is the default)"]
        lines.append("")
    lines += ["#### All Hyperparameters", "", "<details><summary>Click to expand</summary>", ""]
    lines += [f"- `{k}`: {_plain(v)}" for k, v in config.items()]
    lines += ["", "</details>"]
    return "\n".join(lines)


def non_default(config: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """The entries of ``config`` that differ from ``defaults`` (or have no default), in order."""
    return {k: v for k, v in config.items() if k not in defaults or not _same(v, defaults[k])}


def _log_table(rows: Sequence[Mapping[str, Any]], primaries: list[str | None]) -> str:
    fixed = ("epoch", "step", "training_loss")
    seen = list(dict.fromkeys(k for row in rows for k in row if k not in fixed))
    shown = [p for p in primaries if p in seen] or seen
    best_key = next((p for p in primaries if p in seen and _best_row(rows, p) is not None), None)
    best = _best_row(rows, best_key) if best_key else None
    lines = ["| Epoch | Step | Training Loss | " + " | ".join(shown) + " |" if shown
             else "| Epoch | Step | Training Loss |", "|" + ":--|" * (3 + len(shown))]
    for i, row in enumerate(rows):
        step = row.get("step")
        cells = [_num(row.get("epoch")), "-" if step is None else str(step), _num(row.get("training_loss"))]
        cells += [_num(row.get(k)) for k in shown]
        if i == best:
            cells = [f"**{c}**" for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    if best is not None:
        lines += ["", f"* The bold row has the best `{best_key}` (the checkpoint kept when training "
                      "keeps the best model)."]
    return "\n".join(lines)


def _best_row(rows: Sequence[Mapping[str, Any]], key: str) -> int | None:
    scored = [(row[key], i) for i, row in enumerate(rows) if _finite(row.get(key))]
    return max(scored, key=lambda t: (t[0], -t[1]))[1] if scored else None  # first of ties


def _citations(loss_names: list[str]) -> list[tuple[str, str]]:
    entries = {"Sentence Transformers": SBERT_BIB}
    for name in loss_names:
        entries.update(LOSS_CITATIONS.get(name, ()))
    return list(entries.items())


# --------------------------------------------------------------------------- small helpers


def _primary(name: str, metrics: Mapping[str, float], given: str | None) -> str | None:
    if given:
        return given if given in metrics else next((k for k in metrics if _short(name, k) == given), None)
    return next((k for s in PRIMARY_SUFFIXES for k in metrics if _short(name, k) == s), None)


def _task(metrics: Mapping[str, float]) -> tuple[str, str]:
    if any(k.endswith("negative_mse") for k in metrics):
        return TASKS["mse"]
    if any(k.endswith("accuracy") for k in metrics):
        return TASKS["triplet"]
    return TASKS["sts"]


def _short(name: str, key: str) -> str:
    """The metric without its evaluator prefix: ``sts-dev_pearson_cosine`` -> ``pearson_cosine``."""
    return key[len(name) + 1:] if name and key.startswith(name + "_") else key


def _pretty(metric: str) -> str:
    words = {"mse": "MSE", "mae": "MAE", "map": "MAP", "mrr": "MRR", "ndcg": "NDCG"}
    return " ".join(words.get(w, w.capitalize()) for w in metric.split("_"))


def _hub_id(value: Any) -> bool:
    """True for ``"org/name"`` hub ids (not local paths)."""
    return isinstance(value, str) and re.fullmatch(r"[\w.-]+/[\w.-]+", value) is not None \
        and not value.startswith((".", "~"))


def _link_model(base: str) -> str:
    return f"[{base}](https://huggingface.co/{base})" if _hub_id(base) else f"`{base}`"


def _link_dataset(d: DatasetInfo) -> str:
    return f"[{d.name}](https://huggingface.co/datasets/{d.location})" if _hub_id(d.location) else d.name


def _finite(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _num(value: Any) -> str:
    """4 decimals for numbers, ``-`` for a missing value."""
    if value is None or (isinstance(value, str) and not value):
        return "-"
    return f"{value:.4f}" if isinstance(value, numbers.Real) and not isinstance(value, bool) else str(value)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b if isinstance(a, bool) or isinstance(b, bool) else a == b


def _plain(value: Any) -> str:
    return "None" if value is None else str(value)


def _cell(value: Any) -> str:
    """A sample value for a Markdown table cell: short, one line, HTML- and pipe-escaped."""
    if isinstance(value, float):
        text = f"{value:.4g}"
    elif isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        items = list(value.tolist() if hasattr(value, "tolist") else value)
        shown = ", ".join(f"{x:.4f}" if isinstance(x, float) else str(x) for x in items[:3])
        text = f"[{shown}{', ...' if len(items) > 3 else ''}]" + (f" ({len(items)} values)" if len(items) > 3 else "")
    else:
        text = str(value)
    text = " ".join(text.split())
    if len(text) > MAX_CELL:
        text = text[:MAX_CELL].rstrip() + "..."
    return html.escape(text).replace("|", "&#124;")


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} seconds"
    if seconds < 3600:
        return f"{seconds / 60:.1f} minutes ({seconds:.0f} s)"
    return f"{seconds / 3600:.2f} hours ({seconds:.0f} s)"


# --------------------------------------------------------------------------- a little YAML writer

_YAML_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ufeff\ud800-\udfff\ufffe\uffff]")


def _yaml(value: Mapping[str, Any] | Sequence[Any], indent: int = 0) -> str:
    """Block-style YAML for nested dicts/lists of plain values (keys are ours; every string is quoted)."""
    pad, lines = " " * indent, []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if _nested(item):  # a list sits at its key's indentation, a mapping one level in
                lines += [f"{pad}{key}:", _yaml(item, indent + 2 if isinstance(item, Mapping) else indent)]
            else:
                lines.append(f"{pad}{key}: {_yaml_scalar(item)}")
        return "\n".join(lines)
    for item in value:
        # a nested block's first line goes on the dash's line
        lines.append(pad + "- " + (_yaml(item, indent + 2)[indent + 2:] if _nested(item) else _yaml_scalar(item)))
    return "\n".join(lines)


def _nested(value: Any) -> bool:
    return isinstance(value, (Mapping, list, tuple)) and len(value) > 0


def _yaml_scalar(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        x = float(value)
        if math.isnan(x):
            return ".nan"
        if math.isinf(x):
            return ".inf" if x > 0 else "-.inf"
        text = repr(x)
        # YAML 1.1 (PyYAML) reads "1e-05" as a string: it wants a dot and a signed exponent.
        mantissa, _, exponent = text.partition("e")
        if exponent and "." not in mantissa:
            text = f"{mantissa}.0e{exponent}"
        return text
    if isinstance(value, Mapping):
        return "{}"
    if isinstance(value, (list, tuple)):
        return "[]"
    # JSON strings are YAML double-quoted strings; escape what YAML does not allow raw.
    text = json.dumps(str(value), ensure_ascii=False)
    return _YAML_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
