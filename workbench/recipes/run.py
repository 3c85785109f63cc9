"""Running a recipe: build the model, loss and data its sections describe, train with the one
training loop, evaluate on STS-B test at the end and save the model with its card.

    workbench train offline-b-mnrl-minilm
    workbench distill offline-a-distill --set train.max_steps=200

Example:
    >>> from workbench.recipes import load_recipe, run_recipe
    >>> recipe = load_recipe("offline-b-mnrl-minilm").with_(train={"max_steps": 20})   # doctest: +SKIP
    >>> run_recipe(recipe, run_dir="runs/short").metrics["sts-test_spearman_cosine"]   # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.recipes.sections import DataSpec, ModelSpec, Recipe
from workbench.training import Event, TrainConfig


# ----- building the parts ----------------------------------------------------------------------
def _options(spec: ModelSpec, *names: str) -> dict[str, Any]:
    """The section's values that are set (None means: the builder's own default)."""
    return {n: (list(v) if isinstance(v, tuple) else v) for n in names if (v := getattr(spec, n)) is not None}


def build_from_spec(spec: ModelSpec, device: str | None = None, teacher: Any = None) -> Any:
    """The model a ``[model]``/``[student]`` section describes (a distillation student that is
    a copy of the teacher needs ``teacher``).

    Example:
        >>> model = build_from_spec(ModelSpec(base="all-MiniLM-L6-v2", keep_layers=(0,), dense=32, seed=0))
        >>> model.dim, len(model.transformer.auto_model.encoder.layer)
        (32, 1)
    """
    from workbench.models import build_model, load_model

    if spec.load is not None:
        model = load_model(spec.load, device=device)
        if spec.max_seq_length is not None:
            model.max_seq_length = spec.max_seq_length
        return model
    if spec.fresh_static:
        from workbench.static import fresh_static

        model = fresh_static(spec.tokenizer, spec.dim, normalize=spec.normalize is not False, seed=spec.seed)
        return model.to(device) if device is not None else model
    if spec.from_teacher:
        from workbench.distill import make_student

        if teacher is None:
            raise ValueError("this student is a copy of the teacher: pass teacher=")
        student = make_student(teacher, device=device, **_options(
            spec, "keep_layers", "pooling", "dense", "activation", "normalize", "seed"))
        if spec.max_seq_length is not None:
            student.max_seq_length = spec.max_seq_length
        return student
    if spec.fresh is not None:
        from transformers import BertConfig

        base: Any = BertConfig(**spec.fresh)
    else:
        base = spec.base
    return build_model(base, tokenizer=spec.tokenizer, device=device, **_options(
        spec, "keep_layers", "pooling", "dense", "activation", "normalize", "max_seq_length", "seed"))


def load_data(spec: DataSpec) -> Any:
    """One ``[[data]]`` entry -> a ``datasets.Dataset`` (optionally shuffled and cut to ``limit`` rows)."""
    from workbench import data as wd
    from workbench.recipes.sections import data_loaders

    args, limit = dict(spec.args), spec.limit
    if spec.loader == "hub":  # a hub data set named exactly, as the seed cards do
        from datasets import load_dataset

        from workbench.data.sources import hub_enabled, tag

        split = args.get("split", "train")
        what = f"[[data]] {args['id']!r} (config {args.get('config')!r}, split {split!r})"
        try:
            ds = load_dataset(args["id"], args.get("config"), split=split)
        except Exception as err:  # the hub client raises many types; the user needs one line
            where = "could not be loaded from the Hugging Face hub" if hub_enabled() else (
                "is not in the local datasets cache (HF_HUB_OFFLINE / HF_DATASETS_OFFLINE is set)")
            raise wd.DataError(f"{what} {where}: {type(err).__name__}: {err}") from None
        if args.get("columns"):
            ds = ds.select_columns(list(args["columns"]))
        if limit is not None and limit < len(ds):
            ds = ds.select(range(limit))
        return tag(ds, "hub", args["id"], f"{args['id']} from the hub ({ds.num_rows} rows)")
    loader = data_loaders()[spec.loader]
    if spec.loader == "sentences":
        return loader(limit=limit, seed=spec.seed, **args)
    ds = loader(**args)
    if limit is not None and limit < len(ds):
        ds = ds.shuffle(seed=spec.seed).select(range(limit))
    return ds


def planned_steps(recipe: Recipe, rows: Sequence[int] | None = None) -> int:
    """The steps the recipe runs: ``max_steps``, else its epochs of batches over the data.

    With epochs this is the count before ``no_duplicates`` moves a few rows (the trainer's
    ``Started`` event has the exact one). ``rows``: each ``[[data]]`` entry's row count, when
    known (else the data are loaded to count them).
    """
    if recipe.train.max_steps is not None:
        return recipe.train.max_steps
    counts = list(rows) if rows is not None else [len(load_data(d)) for d in recipe.data]
    batch = recipe.train.batch_size
    if recipe.kind == "distill":  # one list of sentences, less the held-out ones
        counts = [max(0, sum(counts) - recipe.eval.mse_sentences)]
    per_epoch = sum(n // batch if recipe.train.drop_last else -(-n // batch) for n in counts)
    return max(1, per_epoch) * recipe.train.epochs


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
    allow_changes: bool = False,
    overwrite: bool = False,
) -> RecipeResult:
    """Build, train (or distill), evaluate on STS-B test and save, emitting events to ``callbacks``.

    Args:
        recipe: the recipe (:func:`~workbench.recipes.load_recipe`, changed with ``Recipe.with_``).
        run_dir: the run folder (default ``runs/NAME-TIMESTAMP``).
        callbacks: functions receiving every training event.
        resume: continue from the last checkpoint in ``run_dir``.
        device: where to train (the best present by default).
        stop_signal: a ``threading.Event``; setting it ends the run after the current step.
        allow_changes: with ``resume``, go on with settings that differ from the ones the run
            started with (recorded); without it such a resume is refused before anything loads.
        overwrite: start afresh in a ``run_dir`` that holds an earlier run (replacing it); without
            it that is refused (resume it, or choose another folder).

    Returns:
        Where the model and run folder are, the final metrics (the last evaluation, plus STS-B
        test when ``[eval] sts_test`` and caption retrieval when ``[eval] caption_retrieval``) and
        the seconds it took.
    """
    from workbench.data import load_stsb, source
    from workbench.evaluation import STSEvaluator
    from workbench.models import resolve_model_path

    start = time.perf_counter()
    # Resolve model ids first: a wrong or missing id fails in seconds, not after loading the data.
    for name in (recipe.teacher.model if recipe.teacher else None, recipe.model.base, recipe.model.load,
                 recipe.model.tokenizer):
        if name is not None:
            resolve_model_path(name)
    if run_dir is None:
        from workbench.training.runs import fresh_run_path

        run_dir = fresh_run_path("runs", f"{recipe.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    run_dir = Path(run_dir)
    from workbench.training import RunHistory
    from workbench.training.runs import RunDir, refuse_changes, settings_changes

    folder = RunDir(run_dir)
    folder.refuse_if_busy()  # here, before the data and models load; the trainer's claim is the real lock
    if not resume and folder.metrics_path.exists() and not overwrite:
        ended = RunHistory.from_jsonl(folder.metrics_path).done
        what = f"a {ended.reason} run" if ended is not None else "an unfinished run"
        raise ValueError(f"{run_dir} holds {what}; continue it with --resume, choose another --run-dir, or pass "
                         "--overwrite to replace it")
    if resume and not allow_changes and folder.latest_checkpoint_path() is not None:  # a run to resume
        stored = folder.read_config()
        refuse_changes(run_dir, settings_changes(stored, {"recipe": recipe.to_dict()}) if "recipe" in stored else {})
    sts_dev = None
    if recipe.eval.sts_dev:
        sts_dev = load_stsb("dev")
        if recipe.eval.sts_dev_limit is not None:
            sts_dev = sts_dev.select(range(min(recipe.eval.sts_dev_limit, len(sts_dev))))
    datasets = {d.label: load_data(d) for d in recipe.data}
    info = {"recipe": recipe.to_dict(), "recipe_file": recipe.path,
            "data": {k: {"rows": len(v), "columns": list(v.column_names), "source": str(source(v))} for k, v in datasets.items()},
            "sts_dev": str(source(sts_dev)) if sts_dev is not None else None}
    # Final evaluators are built now, so missing data fails before training, and recorded with their data.
    final: list[tuple[Any, str]] = []  # (evaluator, what the card says measured it)
    if recipe.eval.sts_test:
        sts_test = load_stsb("test")
        info["sts_test"] = str(source(sts_test))
        final.append((STSEvaluator.from_dataset(sts_test, name="sts-test"), f"STSEvaluator on {source(sts_test)}"))
    if recipe.eval.caption_retrieval:
        from workbench.retrieval import caption_retrieval_task

        task = caption_retrieval_task("test", limit=recipe.eval.caption_retrieval_limit)
        info["caption_retrieval"] = task.source
        final.append((task.evaluator(name="caption-retrieval-test"),
                      f"InformationRetrievalEvaluator on {task.source}"))

    # The final evaluators run once, on the final model, before it is saved: their numbers go in the card.
    test_metrics: dict[str, float] = {}

    def card(model: Any, history: Any, trainer: Any) -> str:
        for evaluator, _ in final:
            test_metrics.update(evaluator(model))
        return recipe_card(recipe, datasets, model, history, trainer, test_metrics,
                           final={ev.name: (ev.primary_metric, what) for ev, what in final})

    if recipe.kind == "distill":
        from workbench.distill import distill
        from workbench.models import load_model

        teacher = load_model(recipe.teacher.model, device=device)
        sentences = next(iter(datasets.values()))
        column = "sentence" if "sentence" in sentences.column_names else sentences.column_names[0]
        texts = [t for d in datasets.values() for t in d[column if column in d.column_names else d.column_names[0]]]
        n_eval = recipe.eval.mse_sentences
        if recipe.model.static:
            student = _static_student(recipe.model, teacher, texts[n_eval:], info)
        else:
            student = build_from_spec(_seeded(recipe), device=device, teacher=teacher)
        model, trainer = distill(
            teacher, student, texts[n_eval:], recipe.train, eval_sentences=texts[:n_eval] or None, sts_dev=sts_dev,
            run_dir=run_dir, callbacks=callbacks, pca_sentences=recipe.teacher.pca_sentences,
            card=card, run_info=info, resume=resume, stop_signal=stop_signal, loss=recipe.loss.build(student),
            allow_changes=allow_changes,
        )
    else:
        from workbench.training import Trainer

        model = build_from_spec(_seeded(recipe), device=device)
        loss = recipe.loss.build(model)
        evaluator = STSEvaluator.from_dataset(sts_dev, name="sts-dev") if sts_dev is not None else None
        trainer = Trainer(model, loss, recipe.train, datasets, evaluator, run_dir=run_dir, callbacks=callbacks,
                          run_info=info, card=card, stop_signal=stop_signal)
        model = trainer.fit(resume=resume, allow_changes=allow_changes)
    metrics = {**trainer.final_metrics, **test_metrics}
    return RecipeResult(str(run_dir / "model"), str(run_dir), metrics, time.perf_counter() - start)


def _seeded(recipe: Recipe) -> ModelSpec:
    """The model section with its new weights seeded: by ``[model] seed``, else by ``[train] seed``, so
    a run's random start never depends on what ran before it in the process (a sweep's trials start
    alike; a notebook's second run starts like its first)."""
    import dataclasses

    spec = recipe.model
    return spec if spec.seed is not None or spec.load is not None else dataclasses.replace(spec, seed=recipe.train.seed)


def _static_student(spec: ModelSpec, teacher: Any, sentences: list[str], info: dict[str, Any]) -> Any:
    """Step 1 of a static recipe: the teacher's vocabulary distilled into a table (recorded in the run's config)."""
    from workbench.static import SIF_COEFFICIENT, distill_static

    start = time.perf_counter()
    sif = spec.sif_coefficient if spec.sif_coefficient is not None else SIF_COEFFICIENT
    frequencies = sentences if spec.frequencies == "data" else None
    student = distill_static(teacher, pca_dims=spec.pca_dims, frequencies=frequencies, sif_coefficient=sif)
    info["static"] = {"pca_dims": spec.pca_dims, "sif_coefficient": sif,
                      "frequencies": f"counted on {len(sentences)} training sentences" if frequencies else "zipf",
                      "vocabulary": student.layers[0].vocab_size, "dim": student.dim,
                      "seconds": round(time.perf_counter() - start, 1)}
    return student


def recipe_card(recipe: Recipe, datasets: dict[str, Any], model: Any, history: Any, trainer: Any,
                test_metrics: dict[str, float], final: dict[str, tuple[str, str]] | None = None) -> str:
    """The model card of a finished recipe run, from what ran: the trainer's config and loss,
    the run's history (best evaluation, training log) and the final evaluations' metrics.

    ``final``: each final evaluator's name -> (primary metric, what measured it); without it the
    ``test_metrics`` are taken as STS-B test's. Every evaluator the run used gets a table."""
    from workbench.data.sources import HUB_URL
    from workbench.models.card import DatasetInfo, model_card

    evaluations: dict[str, dict[str, float]] = {}
    primaries: dict[str, str] = {}
    best = history.best()
    if best is not None:
        groups: dict[str, dict[str, float]] = {}
        for key, value in best.metrics.items():
            groups.setdefault(key.split("_", 1)[0], {})[key] = value
        evaluations.update(groups)
        for name in groups:
            primaries[name] = best.primary if best.primary in groups[name] else f"{name}_{_primary_suffix(name)}"
    # The training loop's evaluators: STS-B dev, and a distillation's MSE on its held-out sentences.
    used = {name: {"sts-dev": "STSEvaluator", "mse": "MSEEvaluator"}.get(name, "") for name in evaluations}
    if final is None:
        final = {"sts-test": ("sts-test_spearman_cosine", "")} if test_metrics else {}
    for name, (primary, what) in final.items():
        metrics = {k: v for k, v in test_metrics.items() if k.startswith(name + "_")}
        if metrics:
            evaluations[name], primaries[name], used[name] = metrics, primary, what
    loss_cfg = trainer.loss.config() if hasattr(trainer.loss, "config") else {"name": type(trainer.loss).__name__}
    infos = []
    # A distillation holds its first mse_sentences sentences out for the MSE metric: they are not training samples.
    held_out = recipe.eval.mse_sentences if recipe.kind == "distill" else 0
    for name, ds in datasets.items():
        taken = min(held_out, len(ds))
        held_out -= taken
        samples = tuple({c: ds[i][c] for c in ds.column_names} for i in range(taken, min(taken + 3, len(ds))))
        location = (ds.info.homepage or "").removeprefix(HUB_URL) or None
        infos.append(DatasetInfo(name=name, size=len(ds) - taken, columns=tuple(ds.column_names), samples=samples,
                                 location=location, loss=loss_cfg["name"]))
    log = []
    losses = dict(zip(history.steps, history.losses, strict=True))
    eval_by_step = {e.step: e.metrics for e in history.evals}
    for step in sorted(set(losses) | set(eval_by_step)):
        row = {"epoch": _epoch_at(history, step), "step": step, "training_loss": losses.get(step)}
        row.update(eval_by_step.get(step, {}))
        log.append(row)
    return model_card(
        model, model_name=recipe.name, base_model=_base_name(recipe), datasets=infos, loss=loss_cfg,
        train_config=trainer.config.to_dict(), default_config=TrainConfig().to_dict(), evaluations=evaluations,
        primary_metrics=primaries, training_log=log, training_seconds=trainer.elapsed_s,
        hardware=_hardware(), setting_changes=[{"step": c.step, "changes": dict(c.changes)} for c in history.changes],
        evaluators=used,
    )


def _primary_suffix(group: str) -> str:
    """The primary metric of an evaluator group that was not the run's primary one."""
    return "negative_mse" if group == "mse" else "spearman_cosine"


def _epoch_at(history: Any, step: int) -> float | None:
    for e in history.evals:
        if e.step == step:
            return e.epoch
    for s, epoch in zip(history.steps, history.epochs, strict=True):
        if s == step:
            return epoch
    return None


def _base_name(recipe: Recipe) -> str | None:
    base = recipe.model.source()
    if base is None and recipe.teacher is not None and recipe.model.from_teacher:
        base = recipe.teacher.model
    return base


def _hardware() -> str:
    import platform

    import torch

    if torch.cuda.is_available():
        return f"1 x {torch.cuda.get_device_name()}"
    return f"CPU ({os.cpu_count()} cores, {platform.machine()}), {torch.get_num_threads()} torch threads"


def recipe_summary(recipe: Recipe) -> str:
    """Two lines: the recipe's name and description, and its non-default training settings."""
    defaults = TrainConfig().to_dict()
    train = {k: v for k, v in recipe.train.to_dict().items() if defaults[k] != v}
    return f"{recipe.name} ({recipe.kind}): {recipe.description}\n  non-default training settings: {train}"
