"""Recipes: one small TOML file describes a whole training or distillation run.

    workbench train recipes/seed-b-mnrl.toml
    workbench distill recipes/offline-a-distill.toml --set train.max_steps=200

A recipe has the sections ``[model]`` (or ``[student]`` and ``[teacher]`` for distillation),
``[loss]``, ``[[data]]`` (one or more data sets), ``[eval]`` and ``[train]`` (a
:class:`~workbench.training.TrainConfig`). :func:`run_recipe` builds everything, trains with
the one training loop, evaluates on STS-B test at the end and saves the model with its card.
"""

from __future__ import annotations

import ast
import dataclasses
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.training import Event, TrainConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes"


@dataclass(frozen=True)
class Recipe:
    """A parsed recipe file."""

    name: str
    kind: str  # "train" or "distill"
    description: str = ""
    model: dict[str, Any] = field(default_factory=dict)  # the model to train (the student when distilling)
    teacher: dict[str, Any] = field(default_factory=dict)
    loss: dict[str, Any] = field(default_factory=dict)
    data: tuple[dict[str, Any], ...] = ()
    eval: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=TrainConfig)
    path: str | None = None


def find_recipe(name_or_path: str | os.PathLike[str]) -> Path:
    """A recipe file by path, or by name in ``./recipes`` or the project's ``recipes/`` folder."""
    path = Path(name_or_path)
    candidates = [path, path.with_suffix(".toml"), Path("recipes") / f"{path.name}.toml", RECIPES_DIR / f"{path.name}.toml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    known = sorted(p.stem for p in RECIPES_DIR.glob("*.toml")) if RECIPES_DIR.is_dir() else []
    raise FileNotFoundError(f"no recipe {name_or_path!r} (known: {', '.join(known) or 'none found'})")


def load_recipe(name_or_path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> Recipe:
    """Parse a recipe file; ``overrides`` are ``section.key=value`` strings (``train.lr=1e-4``)."""
    path = find_recipe(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: not valid TOML: {err}") from None
    for item in overrides:
        _apply_override(raw, item)
    known = {"name", "kind", "description", "model", "student", "teacher", "loss", "data", "eval", "train"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"{path}: unknown recipe sections {unknown}; known: {sorted(known)}")
    kind = raw.get("kind", "train")
    if kind not in ("train", "distill"):
        raise ValueError(f"{path}: kind must be 'train' or 'distill', got {kind!r}")
    if kind == "distill" and not raw.get("teacher"):
        raise ValueError(f"{path}: a distill recipe needs a [teacher] section")
    try:
        train = TrainConfig.from_dict(raw.get("train", {}))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path} [train]: {err}") from None
    return Recipe(
        name=raw.get("name", path.stem), kind=kind, description=raw.get("description", ""),
        model=raw.get("student", raw.get("model", {})), teacher=raw.get("teacher", {}), loss=raw.get("loss", {}),
        data=tuple(raw.get("data", ())), eval=raw.get("eval", {}), train=train, path=str(path),
    )


def _override_value(text: str) -> Any:
    """A ``--set`` value as the recipe file would hold it: TOML (``false``, ``1e-4``, ``[0, 3, 5]``,
    ``"text"``), else a Python literal (``False``, ``None``), else the text itself."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare string


def _apply_override(raw: dict[str, Any], item: str) -> None:
    key, sep, text = item.partition("=")
    if not sep or "." not in key:
        raise ValueError(f"override {item!r}: use section.key=value, e.g. train.lr=1e-4")
    section, name = key.strip().split(".", 1)
    value = _override_value(text.strip())
    target = raw.setdefault(section, {})
    if isinstance(target, list):  # [[data]]: the override applies to every entry
        for entry in target:
            entry[name] = value
    else:
        target[name] = value


# ----- building the parts ----------------------------------------------------------------------
def build_from_spec(spec: dict[str, Any], device: str | None = None) -> Any:
    """The model a ``[model]``/``[student]`` section describes.

    Keys: ``base`` (a name or folder) or ``fresh`` (a BERT config dict, with ``tokenizer``);
    ``keep_layers``, ``pooling``, ``dense``, ``activation``, ``normalize``, ``max_seq_length``,
    ``seed``; or ``load`` (a finished model to load as is).
    """
    from workbench.models import build_model, load_model

    spec = dict(spec)
    if "load" in spec:
        model = load_model(spec.pop("load"), device=device)
        if "max_seq_length" in spec:
            model.max_seq_length = int(spec["max_seq_length"])
        return model
    fresh = spec.pop("fresh", None)
    tokenizer = spec.pop("tokenizer", None)
    if fresh is not None:
        from transformers import BertConfig

        base: Any = BertConfig(**fresh)
        if tokenizer is None:
            raise ValueError("[model] fresh = {...} needs tokenizer = 'a model whose vocabulary to use'")
    else:
        base = spec.pop("base", None)
        if base is None:
            raise ValueError("[model] needs base = 'name or folder', fresh = {...}, or load = 'folder'")
    allowed = {"keep_layers", "pooling", "dense", "activation", "normalize", "max_seq_length", "seed"}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise ValueError(f"[model] unknown keys {unknown}; known: base, fresh, tokenizer, load, {', '.join(sorted(allowed))}")
    return build_model(base, tokenizer=tokenizer, device=device, **spec)


def build_loss(spec: dict[str, Any], model: Any) -> Any:
    from workbench import losses

    spec = dict(spec)
    name = spec.pop("name", "MultipleNegativesRankingLoss")
    classes = {"MultipleNegativesRankingLoss": losses.MultipleNegativesRankingLoss,
               "CachedMultipleNegativesRankingLoss": losses.CachedMultipleNegativesRankingLoss,
               "MSELoss": losses.MSELoss, "CoSENTLoss": losses.CoSENTLoss}
    if name not in classes:
        raise ValueError(f"[loss] unknown loss {name!r}; known: {', '.join(classes)}")
    return classes[name](model, **spec)


def load_data(spec: dict[str, Any]) -> Any:
    """One ``[[data]]`` entry -> a ``datasets.Dataset`` (optionally shuffled and cut to ``limit`` rows)."""
    from workbench import data as wd

    spec = dict(spec)
    loader = spec.pop("loader")
    limit = spec.pop("limit", None)
    seed = spec.pop("seed", 0)
    spec.pop("name", None)
    if loader == "hub":  # a hub data set named exactly, as the seed cards do
        from datasets import load_dataset

        from workbench.data.sources import hub_enabled, tag

        what = f"[[data]] {spec['id']!r} (config {spec.get('config')!r}, split {spec.get('split', 'train')!r})"
        try:
            ds = load_dataset(spec["id"], spec.get("config"), split=spec.get("split", "train"))
        except Exception as err:  # the hub client raises many types; the user needs one line
            where = "could not be loaded from the Hugging Face hub" if hub_enabled() else (
                "is not in the local datasets cache (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE is set)")
            raise wd.DataError(f"{what} {where}: {type(err).__name__}: {err}") from None
        if spec.get("columns"):
            ds = ds.select_columns(list(spec["columns"]))
        if limit is not None and limit < len(ds):
            ds = ds.select(range(int(limit)))
        return tag(ds, "hub", spec["id"], f"{spec['id']} from the hub ({ds.num_rows} rows)")
    loaders: dict[str, Callable[..., Any]] = {
        "nli_triplets": wd.load_nli_triplets, "caption_pairs": wd.load_caption_pairs, "sentences": wd.load_sentences,
        "stsb": wd.load_stsb, "file": wd.load_file,
    }
    if loader not in loaders:
        raise ValueError(f"[[data]] unknown loader {loader!r}; known: {', '.join(loaders)}")
    if loader == "sentences":
        return loaders[loader](limit=limit, seed=seed, **spec)
    ds = loaders[loader](**spec)
    if limit is not None and limit < len(ds):
        ds = ds.shuffle(seed=seed).select(range(int(limit)))
    return ds


def data_name(spec: dict[str, Any]) -> str:
    return spec.get("name") or spec["loader"]


# ----- running ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class RecipeResult:
    model_path: str | None
    run_dir: str
    metrics: dict[str, float]
    seconds: float


def run_recipe(
    recipe: Recipe,
    run_dir: str | os.PathLike[str] | None = None,
    callbacks: Sequence[Callable[[Event], None]] = (),
    resume: bool = False,
    device: str | None = None,
    stop_signal: Any = None,
) -> RecipeResult:
    """Build, train (or distill), evaluate on STS-B test and save, emitting events to ``callbacks``.

    Args:
        recipe: the parsed recipe.
        run_dir: the run folder (default ``runs/NAME-TIMESTAMP``).
        callbacks: functions receiving every training event.
        resume: continue from the last checkpoint in ``run_dir``.
        device: where to train (the best present by default).
        stop_signal: a ``threading.Event``; setting it ends the run after the current step.
    """
    from workbench.data import load_stsb, source
    from workbench.evaluation import STSEvaluator
    from workbench.models import resolve_model_path

    start = time.perf_counter()
    # Resolve model ids first: a wrong or missing id fails in seconds, not after loading the data.
    for spec in (recipe.teacher, recipe.model):
        for key in ("base", "load", "model", "tokenizer"):
            if isinstance(spec.get(key), str):
                resolve_model_path(spec[key])
    if run_dir is None:
        from workbench.training.runs import fresh_run_path

        run_dir = fresh_run_path("runs", f"{recipe.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    run_dir = Path(run_dir)
    ev = recipe.eval
    sts_dev = None
    if ev.get("sts_dev", True):
        dev = load_stsb("dev")
        if ev.get("sts_dev_limit"):
            dev = dev.select(range(min(int(ev["sts_dev_limit"]), len(dev))))
        sts_dev = dev
    datasets = {data_name(d): load_data(d) for d in recipe.data}
    if not datasets:
        raise ValueError(f"recipe {recipe.name}: no [[data]] entries")
    info = {"recipe": recipe.name, "recipe_file": recipe.path, "description": recipe.description,
            "model": recipe.model, "teacher": recipe.teacher,
            "data": {k: {"rows": len(v), "columns": list(v.column_names), "source": str(source(v))} for k, v in datasets.items()},
            "sts_dev": str(source(sts_dev)) if sts_dev is not None else None}
    card_fn = _card_writer(recipe, datasets)

    if recipe.kind == "distill":
        from workbench.distill import distill, make_student
        from workbench.models import load_model

        teacher = load_model(recipe.teacher["model"], device=device)
        spec = dict(recipe.model)
        if "keep_layers" in spec and "base" not in spec and "fresh" not in spec and "load" not in spec:
            student = make_student(teacher, keep_layers=spec.pop("keep_layers"))
            if "max_seq_length" in spec:
                student.max_seq_length = int(spec["max_seq_length"])
        else:
            student = build_from_spec(spec, device=device)
        sentences = next(iter(datasets.values()))
        column = "sentence" if "sentence" in sentences.column_names else sentences.column_names[0]
        texts = [t for d in datasets.values() for t in d[column if column in d.column_names else d.column_names[0]]]
        n_eval = int(ev.get("mse_sentences", 1000))
        model, trainer = distill(
            teacher, student, texts[n_eval:], recipe.train, eval_sentences=texts[:n_eval], sts_dev=sts_dev,
            run_dir=run_dir, callbacks=callbacks, pca_sentences=int(recipe.teacher.get("pca_sentences", 40000)),
            card=card_fn, run_info=info, resume=resume, stop_signal=stop_signal,
        )
    else:
        from workbench.training import Trainer

        model = build_from_spec(recipe.model, device=device)
        loss = build_loss(recipe.loss, model)
        evaluator = STSEvaluator.from_dataset(sts_dev, name="sts-dev") if sts_dev is not None else None
        trainer = Trainer(model, loss, recipe.train, datasets, evaluator, run_dir=run_dir, callbacks=callbacks,
                          run_info=info, card=card_fn, stop_signal=stop_signal)
        model = trainer.fit(resume=resume)
    metrics = dict(trainer.final_metrics)
    return RecipeResult(str(run_dir / "model"), str(run_dir), metrics, time.perf_counter() - start)


def _card_writer(recipe: Recipe, datasets: dict[str, Any]) -> Callable[..., str]:
    """A function the trainer calls at the end: evaluates STS-B test, then writes the full card."""

    def write(model: Any, history: Any, trainer: Any) -> str:
        from workbench.data import load_stsb
        from workbench.data.sources import HUB_URL
        from workbench.evaluation import STSEvaluator
        from workbench.models.card import DatasetInfo, model_card

        evaluations: dict[str, dict[str, float]] = {}
        primaries: dict[str, str] = {}
        best = history.best()
        if best is not None:
            groups: dict[str, dict[str, float]] = {}
            for key, value in best.metrics.items():
                groups.setdefault(key.split("_", 1)[0], {})[key] = value
            evaluations.update(groups)
        if recipe.eval.get("sts_test", True):
            test = STSEvaluator.from_dataset(load_stsb("test"), name="sts-test")
            evaluations["sts-test"] = test(model)
            primaries["sts-test"] = test.primary_metric
        for name in evaluations:
            if name == "sts-dev":
                primaries[name] = "sts-dev_spearman_cosine"
            elif name == "mse":
                primaries[name] = "mse_negative_mse"
        trainer.final_metrics = {k: v for group in evaluations.values() for k, v in group.items()}
        infos = []
        for name, ds in datasets.items():
            samples = tuple({c: ds[i][c] for c in ds.column_names} for i in range(min(3, len(ds))))
            location = (ds.info.homepage or "").removeprefix(HUB_URL) or None
            infos.append(DatasetInfo(name=name, size=len(ds), columns=tuple(ds.column_names), samples=samples,
                                     location=location, loss=(recipe.loss.get("name") or None)))
        log = []
        losses = dict(zip(history.steps, history.losses, strict=True))
        eval_by_step = {e.step: e.metrics for e in history.evals}
        for step in sorted(set(losses) | set(eval_by_step)):
            row = {"epoch": _epoch_at(history, step), "step": step, "training_loss": losses.get(step)}
            row.update(eval_by_step.get(step, {}))
            log.append(row)
        defaults = TrainConfig().to_dict()
        loss_cfg = trainer.loss.config() if hasattr(trainer.loss, "config") else {"name": type(trainer.loss).__name__}
        return model_card(
            model, model_name=recipe.name, base_model=_base_name(recipe), datasets=infos, loss=loss_cfg,
            train_config=recipe.train.to_dict(), default_config=defaults, evaluations=evaluations,
            primary_metrics=primaries, training_log=log, training_seconds=getattr(trainer, "elapsed_s", None),
            hardware=_hardware(),
        )

    return write


def _epoch_at(history: Any, step: int) -> float | None:
    for e in history.evals:
        if e.step == step:
            return e.epoch
    for s, epoch in zip(history.steps, history.epochs, strict=True):
        if s == step:
            return epoch
    return None


def _base_name(recipe: Recipe) -> str | None:
    spec = recipe.model
    base = spec.get("base") or spec.get("load")
    if base is None and recipe.kind == "distill" and "keep_layers" in spec:
        base = recipe.teacher.get("model")
    return str(base) if base is not None else None


def _hardware() -> str:
    import platform

    import torch

    if torch.cuda.is_available():
        return f"1 x {torch.cuda.get_device_name()}"
    return f"CPU ({os.cpu_count()} cores, {platform.machine()}), {torch.get_num_threads()} torch threads"


def recipe_summary(recipe: Recipe) -> str:
    train = {k: v for k, v in dataclasses.asdict(recipe.train).items() if TrainConfig().to_dict()[k] != v}
    return f"{recipe.name} ({recipe.kind}): {recipe.description}\n  non-default training settings: {train}"
