"""``workbench quickstart``: the whole workbench in one headless, offline run.

    workbench quickstart                 # about 2-3 minutes on a 2-core CPU
    workbench quickstart --smoke         # a few seconds of work: for tests
    workbench quickstart --out my-report --steps 100

It loads a model, encodes example sentences (a similarity heatmap) and a sample of English
sentences (a 2-D projection), evaluates the model on STS-B test, trains a small model for a few
steps with a recipe while printing every training event, and writes one self-contained HTML
report (``report.html``, interactive plotly figures that open offline) to the output folder,
next to the run folder (``run/``, with the trained model and its card) and ``metrics.json``.

Without ``WORKBENCH_DATA`` the data sets are the built-in SAMPLE: that is said loudly, in the
terminal and in the report, because numbers measured on it mean nothing.

Example:
    >>> result = run_quickstart(QuickstartConfig.smoke(out="qs-out"))   # doctest: +SKIP
    >>> result.report                                                     # doctest: +SKIP
    PosixPath('qs-out/report.html')
"""

from __future__ import annotations

import dataclasses
import json
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.models import DEFAULT_MODEL

EXAMPLE_SENTENCES: tuple[str, ...] = (
    "A man is playing a guitar.",
    "Someone is playing an instrument.",
    "The man is not playing a guitar.",
    "A woman is slicing an onion.",
    "A person is cutting vegetables in the kitchen.",
    "A dog runs along the beach.",
    "A puppy plays in the sand by the sea.",
    "The stock market fell sharply today.",
    "Share prices dropped at the close of trading.",
    "It is raining in the city.",
)

SAMPLE_NOTICE = (
    "NOTE: the real data sets were not found, so this run uses the built-in SAMPLE (a few dozen rows). "
    "Its numbers are a smoke test, not a benchmark. Set WORKBENCH_DATA to a folder laid out like "
    "shared/data (stsb/, snli/, multi30k-captions/, ...) for real figures."
)


@dataclass(frozen=True)
class QuickstartConfig:
    """What the quickstart does; :meth:`smoke` is the tiny setting the tests use.

    Example:
        >>> QuickstartConfig(steps=100).eval_steps
        25
    """

    out: str = "workbench-out"  # the output folder
    model: str = DEFAULT_MODEL  # the model to encode and evaluate with
    recipe: str = "workshop-mnrl"  # the short training run (B′(i) sized to answer in minutes)
    steps: int = 40  # training steps
    eval_every: int | None = None  # steps between STS-B dev evaluations; None: steps // 4
    batch_size: int = 64
    sentences_per_source: int = 100  # sentences per source in the projection
    projection: str = "pca"  # "pca" (instant) or "umap" (~30 s more on a 2-core CPU, first time)
    sts_pairs: int | None = None  # STS-B test pairs to evaluate on; None: all
    sts_dev_pairs: int | None = None  # STS-B dev pairs for the training curve; None: all
    train_rows: int | None = None  # cap on each training data set; None: the recipe's
    sts_test_after: bool = True  # evaluate the trained model on STS-B test as well

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.projection not in ("pca", "umap"):
            raise ValueError(f"projection must be 'pca' or 'umap', got {self.projection!r}")

    @property
    def eval_steps(self) -> int:
        return self.eval_every if self.eval_every is not None else max(1, self.steps // 4)

    def replace(self, **changes: Any) -> QuickstartConfig:
        return dataclasses.replace(self, **changes)

    @classmethod
    def smoke(cls, **changes: Any) -> QuickstartConfig:
        """A tiny setting (seconds of work): a few steps, sentences and pairs."""
        tiny = cls(steps=4, eval_every=2, batch_size=16, sentences_per_source=15, sts_pairs=100,
                   sts_dev_pairs=100, train_rows=200, sts_test_after=False)
        return tiny.replace(**changes)

    def apply(self, recipe: Any) -> Any:
        """The training recipe with this setting's fields replaced (``Recipe.with_``).

        Example:
            >>> from workbench.recipes import load_recipe
            >>> short = QuickstartConfig(steps=100).apply(load_recipe("workshop-mnrl"))
            >>> short.train.max_steps, short.train.eval_every, short.eval.sts_test
            (100, 25, True)
        """
        changes: dict[str, dict[str, Any]] = {
            "train": {"max_steps": self.steps, "eval_every": self.eval_steps, "batch_size": self.batch_size,
                      "log_every": max(1, min(10, self.eval_steps))},
            "eval": {"sts_test": self.sts_test_after},
        }
        if self.sts_dev_pairs is not None:
            changes["eval"]["sts_dev_limit"] = self.sts_dev_pairs
        if self.train_rows is not None:
            changes["data"] = {"limit": self.train_rows}
        return recipe.with_(**changes)


@dataclass(frozen=True)
class QuickstartResult:
    """What a quickstart run produced."""

    report: Path
    run_dir: Path
    model_path: Path | None
    base_metrics: dict[str, float]  # the model's STS-B test metrics
    train_metrics: dict[str, float]  # the trained model's final metrics
    curve: str  # the STS-B dev curve in one line (first -> last, best)
    on_sample: bool  # True when the built-in sample stood in for the real data
    seconds: float


def sample_sentences(
    per_source: int = 100, sources: Sequence[str] = ("wikipedia", "misc", "captions"), seed: int = 0
) -> tuple[list[str], list[str]]:
    """A few sentences from each source, with the source as label (to colour a projection).

    Args:
        per_source: sentences per source (fewer when a source has fewer).
        sources: names from :data:`workbench.data.SENTENCE_SOURCES`.
        seed: which sentences (a seeded shuffle).

    Returns:
        ``(texts, labels)``, two lists of the same length.
    """
    from workbench.data import load_sentences

    texts: list[str] = []
    labels: list[str] = []
    for name in sources:
        ds = load_sentences([name], limit=per_source, seed=seed)
        texts += ds["sentence"]
        labels += [name] * ds.num_rows
    return texts, labels


def run_quickstart(
    config: QuickstartConfig | None = None, echo: Callable[[str], None] | None = None
) -> QuickstartResult:
    """Encode, evaluate, train briefly and write the HTML report.

    Args:
        config: the setting (:class:`QuickstartConfig` defaults when ``None``).
        echo: receives every line of progress (``print`` with flush by default).

    Returns:
        The report path, run folder, metrics and the STS-B dev curve in one line.
    """
    from workbench.data import SampleDataWarning, load_stsb, source
    from workbench.evaluation import STSEvaluator, format_metrics
    from workbench.models import load_model
    from workbench.recipes import load_recipe, recipe_summary, run_recipe
    from workbench.report import (
        Section,
        curve_summary,
        curves_figure,
        projection_figure,
        similarity_figure,
        write_report,
    )
    from workbench.training import RunHistory
    from workbench.training.events import format_event

    config = config or QuickstartConfig()
    say = echo or _print
    start = time.perf_counter()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    say(f"workbench quickstart: {config.model}, {config.steps} training steps -> {out}/")

    with warnings.catch_warnings():
        # The sample is announced once below, in plain words, instead of once per data set.
        warnings.simplefilter("ignore", SampleDataWarning)
        sts = load_stsb("test")
        on_sample = source(sts).kind == "sample"
        if on_sample:
            say(SAMPLE_NOTICE)

        # 1. encode
        t0 = time.perf_counter()
        model = load_model(config.model)
        say(f"\n[1/4] model {config.model}: {model.dim}-d, max {model.max_seq_length} tokens, on {model.device}")
        examples = list(EXAMPLE_SENTENCES)
        sim = model.similarity(model.encode(examples))  # (n, n)
        texts, labels = sample_sentences(config.sentences_per_source)
        emb = model.encode(texts)  # (m, dim)
        coords = _project(emb, config.projection)  # (m, 2)
        took = time.perf_counter() - t0
        say(f"encoded {len(examples)} example sentences and {len(texts)} sentences "
            f"({', '.join(sorted(set(labels)))}) in {took:.1f} s; projected them with {config.projection.upper()}")

        # 2. evaluate
        sts_line = str(source(sts))
        if config.sts_pairs is not None and config.sts_pairs < sts.num_rows:
            sts = sts.select(range(config.sts_pairs))
            sts_line = f"the first {sts.num_rows} pairs of {sts_line}"
        say(f"\n[2/4] evaluating on {sts_line}")
        evaluator = STSEvaluator.from_dataset(sts, name="sts-test")
        base_metrics = evaluator(model)
        table = format_metrics(base_metrics)
        say(table)
        say(f"primary: {evaluator.primary_metric} = {base_metrics[evaluator.primary_metric]:.4f}")

        # 3. train
        recipe = config.apply(load_recipe(config.recipe))
        say(f"\n[3/4] training: {recipe_summary(recipe)}")
        history = RunHistory()
        result = run_recipe(recipe, run_dir=out / "run", overwrite=True,  # the quickstart's own folder, made anew
                            callbacks=[history.on_event, lambda event: say(format_event(event))])
        curve = curve_summary(history)
        say(f"STS-B dev during training: {curve}")
        trained = {k: v for k, v in result.metrics.items() if k.startswith(("sts-dev", "sts-test"))}
        if trained:
            say(format_metrics(trained))

    # 4. report
    model_path = Path(result.model_path) if result.model_path else None
    data_note = SAMPLE_NOTICE + "\n\n" if on_sample else ""
    sections = [
        Section("Similarity", data_note + f"Cosine similarity of {len(examples)} example sentences under "
                f"{config.model}. 1 means the same direction, 0 unrelated. Paraphrases should light up in "
                "pairs; the negated sentence shows that embeddings often miss negation.",
                figure=similarity_figure(sim, examples, title=f"cosine similarity ({config.model})")),
        Section("Projection", f"{len(texts)} sentences from {', '.join(dict.fromkeys(labels))}, embedded and "
                f"projected to 2-D with {config.projection.upper()}; colour = source. Hover to read a sentence.",
                figure=projection_figure(coords, texts, labels, title=f"{config.projection.upper()} of {len(texts)} sentences")),
        Section("STS-B evaluation", f"Evaluated on {sts_line}. Each pair has a human similarity score (0-5); the "
                "model scores it with cosine (and other functions). Spearman = rank correlation between the two "
                "(does the model order pairs as people do?), Pearson = linear correlation. "
                "all-MiniLM-L6-v2 reaches 0.8203 spearman_cosine on the full test set.",
                pre=table),
        Section("Training", f"Recipe {recipe.name}: {recipe.description}. {config.steps} steps of batch "
                f"{config.batch_size}; STS-B dev is evaluated every {config.eval_steps} steps (the curve on the "
                f"right). {curve}.",
                figure=curves_figure(history, title=f"{recipe.name}, {config.steps} steps"),
                pre=format_metrics(trained) if trained else ""),
        Section("Next", f"The trained model is in {model_path} (load it with workbench.load_model or "
                "sentence_transformers.SentenceTransformer); its README.md is the model card. For the "
                "interactive version of everything here, run: jupyter lab notebooks/"),
    ]
    report = write_report(out / "report.html", f"workbench quickstart: {config.model}", sections)
    (out / "metrics.json").write_text(json.dumps(
        {"model": config.model, "on_sample": on_sample, "base": base_metrics, "trained": result.metrics,
         "sts_dev_curve": dict(zip(*history.metric(history.primary), strict=True)) if history.primary else {}}, indent=2) + "\n",
        encoding="utf-8")
    seconds = time.perf_counter() - start
    say(f"\n[4/4] report: {report.resolve()} ({report.stat().st_size / 1e6:.1f} MB, opens offline in any browser)")
    say(f"done in {seconds:.0f} s. Next: open the report, then the notebooks:  jupyter lab notebooks/")
    return QuickstartResult(report, Path(result.run_dir), model_path, base_metrics, dict(result.metrics), curve,
                            on_sample, seconds)


def _project(emb: Any, method: str) -> Any:
    from workbench.projection import pca, umap

    if method == "umap" and len(emb) > 15:
        return umap(emb, n_neighbors=15, seed=0)
    return pca(emb, 2)


def _print(line: str) -> None:
    print(line, flush=True)
