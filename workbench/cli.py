"""The ``workbench`` command line.

    workbench encode "A sentence." "Another one." --out emb.npy
    workbench encode --file sentences.txt --out emb.npy
    workbench eval --model all-MiniLM-L6-v2 --splits dev,test
    workbench eval --model all-MiniLM-L6-v2 --model my-model --data pairs.csv --columns a,b,gold --report cmp.html
    workbench quickstart --out workbench-out
    workbench clean runs --dry-run

Errors that a user can fix (a missing file, a bad column, an unknown model) print one line
and exit with status 2; ``WORKBENCH_DEBUG=1`` shows the full traceback instead.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from workbench.models import DEFAULT_MODEL

STS_SPLITS = ("train", "dev", "validation", "test")


def _input_file(path: Path, what: str = "--file") -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{what} {path}: no such file")
    if path.is_dir():
        raise ValueError(f"{what} {path} is a folder; give a file (one text per line, or a csv/tsv/jsonl/parquet table)")
    return path


def check_output(out: Path, overwrite: bool = False, inputs: Sequence[Path] = (), what: str = "--out") -> None:
    """Refuse, before any work, an output that would silently replace data or cannot be written.

    An existing file is replaced only with ``overwrite``; an input file is never a valid output;
    the folder must exist or be creatable, and be writable (tried with a probe file, which also
    catches a read-only file system).
    """
    for source in inputs:
        try:
            same = out.exists() and source.exists() and os.path.samefile(out, source)
        except OSError:
            same = False
        if same:
            raise ValueError(f"{what} {out} is the input file {source}: writing it would destroy the input; "
                             "choose another output")
    if out.is_dir():
        raise ValueError(f"{what} {out} is a folder; give a file name")
    if out.exists() and not overwrite:
        raise ValueError(f"{what} {out} already exists; pass --overwrite to replace it")
    folder = out.parent
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{what} {out}: {existing} is a file, not a folder")
    try:
        import tempfile

        fd, probe = tempfile.mkstemp(prefix=".workbench-write-check-", dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise ValueError(f"{what} {out}: cannot write in {existing} ({err.strerror or err})") from None


def _read_texts(args: argparse.Namespace) -> list[str]:
    texts = list(args.texts)
    if args.file:
        path = _input_file(Path(args.file))
        if path.suffix.lower() in (".txt", ""):
            try:
                raw = path.read_text(encoding="utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
            if "\x00" in raw:
                line = raw.count("\n", 0, raw.index("\x00")) + 1
                raise ValueError(f"{path}: line {line} holds a NUL byte: this looks like a binary file, not text")
            texts += [line for line in raw.splitlines() if line.strip()]
        else:
            from workbench.data import load_file

            ds = load_file(path, columns=[args.column])
            texts += [str(t) for t in ds[args.column]]
    if not texts:
        raise ValueError("nothing to encode: give texts as arguments or --file")
    return texts


def _save_npy(path: Path, array: np.ndarray) -> None:
    """Write aside, then rename: an interrupted write never leaves a truncated file."""
    from workbench.atomic import atomic_open

    with atomic_open(path, "wb") as fh:
        np.save(fh, array)


def cmd_encode(args: argparse.Namespace) -> int:
    from workbench.models import load_model

    out = Path(args.out)
    check_output(out, args.overwrite, [Path(args.file)] if args.file else [])
    texts = _read_texts(args)
    model = load_model(args.model, device=args.device, **_backend(args))
    emb = model.encode(texts, batch_size=args.batch_size, normalize=args.normalize, progress=not args.quiet)
    _save_npy(out, emb)
    print(f"encoded {len(texts)} texts with {args.model} -> {out} (shape {emb.shape[0]} x {emb.shape[1]}, float32)")
    return 0


def cmd_encode_corpus(args: argparse.Namespace) -> int:
    from workbench.corpus import encode_corpus
    from workbench.models import load_model

    _input_file(Path(args.source), "source")
    check_output(Path(args.out), args.overwrite, [Path(args.source)])
    model = load_model(args.model, device=args.device)
    if args.max_seq_length:
        model.max_seq_length = args.max_seq_length
    devices = [d.strip() for d in args.devices.split(",")] if args.devices else None
    result = encode_corpus(model, args.source, args.out, column=args.column, chunk_size=args.chunk_size,
                           batch_size=args.batch_size, normalize=args.normalize, resume=not args.restart,
                           progress=not args.quiet, num_workers=args.workers, devices=devices)
    again = f", {result.reused} already on disk from an interrupted run" if result.reused else ""
    print(f"encoded {result.encoded} texts{again} with {args.model} in {result.seconds:.1f}s "
          f"({result.workers} process{'es' if result.workers > 1 else ''}) -> {result.path} "
          f"(shape {result.rows} x {result.dim}, float32; np.load(path, mmap_mode='r') reads it lazily)")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from workbench.evaluation import compare, format_comparison, format_metrics
    from workbench.models import load_model

    for out, flag in ((args.json, "--json"), (args.report, "--report")):
        if out:
            check_output(Path(out), args.overwrite, what=flag)
    models = args.model or [DEFAULT_MODEL]
    repeated = sorted({m for m in models if models.count(m) > 1})
    if repeated:
        raise ValueError(f"--model {repeated[0]} is given twice")
    evaluators, lines = _eval_data(args)
    for line in lines:
        print(line)
    tables = []
    for name in models:
        model = load_model(name, device=args.device, **_backend(args))
        runs = _runs_on(model)
        print(f"\nmodel: {name} ({model.dim}-d, max {model.max_seq_length} tokens, {runs})")
        tables.append(compare({name: model}, evaluators, batch_size=args.batch_size))
        if len(models) == 1:
            for ev in evaluators:
                metrics = tables[-1].attrs["metrics"][name][ev.name]
                print(f"\n{ev.source}")
                print(format_metrics(metrics))
                print(f"primary: {ev.primary_metric} = {metrics[ev.primary_metric]:.4f}")
        del model
    table = _join_tables(tables)
    if table.size > 1:
        print(f"\n{format_comparison(table)}")
        if len(models) > 1:
            print("(the full metric set of each model and data set: --json)")
    metrics = table.attrs["metrics"]
    if args.json:
        from workbench.atomic import atomic_write_text

        # One model: its flat {key: value} dict, as before; several: one such dict per model name.
        flat = {name: {k: v for by_data in metrics[name].values() for k, v in by_data.items()} for name in models}
        content = flat[models[0]] if len(models) == 1 else flat
        atomic_write_text(Path(args.json), json.dumps(content, indent=2) + "\n")  # its folder is made if missing
        print(f"\nwrote {args.json}")
    if args.report:
        from workbench.report import Section, write_report
        from workbench.widgets.comparison import comparison_figure

        sources = "\n".join(lines)
        text = (f"{len(models)} model{'s' if len(models) > 1 else ''} on {len(evaluators)} data "
                f"set{'s' if len(evaluators) > 1 else ''}; the bars are each data set's primary metric.")
        write_report(Path(args.report), "workbench eval: model comparison",
                     [Section("Comparison", text, figure=comparison_figure(table), pre=format_comparison(table)),
                      Section("Data", pre=sources)])
        print(f"wrote {args.report}")
    return 0


class _DataAction(argparse.Action):
    """``--data`` (repeatable): each one a data set; a ``--columns`` after it belongs to it."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # noqa: ANN001
        specs = list(getattr(namespace, self.dest, None) or [])
        specs.append({"data": values, "columns": None})
        setattr(namespace, self.dest, specs)


class _ColumnsAction(argparse.Action):
    """``--columns`` binds to the ``--data`` just before it; given before any ``--data``, to them all."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:  # noqa: ANN001
        specs = getattr(namespace, "data", None) or []
        if not specs:
            if getattr(namespace, "columns", None) is not None:
                parser.error("--columns is given twice before the first --data")
            namespace.columns = values
        elif specs[-1]["columns"] is not None:
            parser.error(f"--columns is given twice for --data {specs[-1]['data']}")
        else:
            specs[-1]["columns"] = values


def _is_stsb_folder(path: Path) -> bool:
    """A folder laid out like shared/data (holding stsb/), or the stsb folder itself."""
    return path.is_dir() and ((path / "stsb").is_dir() or any(path.glob("stsb-*-*.tsv")))


def _eval_data(args: argparse.Namespace) -> tuple[list, list[str]]:
    """The evaluators ``workbench eval`` runs, and one line per data set saying what it is."""
    from workbench.data import load_stsb
    from workbench.data.pairs import looks_like_hub_id
    from workbench.evaluation import STSEvaluator

    specs = args.data or [{"data": None, "columns": None}]
    stsb = [spec for spec in specs if spec["data"] is None or _is_stsb_folder(Path(spec["data"]))]
    if args.splits is not None and not stsb:
        raise ValueError("--splits picks STS-B splits (of the default data or an STS-B folder); "
                         "none of the --data is one. For a datasets folder or hub id use --data NAME@SPLIT")
    splits = [s.strip() for s in (args.splits or "dev,test").split(",") if s.strip()]
    unknown = [s for s in splits if s not in STS_SPLITS]
    if stsb and (unknown or not splits):
        raise ValueError(f"--splits {args.splits!r}: unknown {', '.join(map(repr, unknown)) or 'none given'}; "
                         f"choose from {', '.join(STS_SPLITS)}")
    evaluators, lines = [], []
    for spec in specs:
        value, columns = spec["data"], spec["columns"] or args.columns
        if spec in stsb:
            if spec["columns"]:
                raise ValueError(f"--columns applies to files and data sets; {value} is an STS-B folder")
            found = [STSEvaluator.from_dataset(load_stsb(split, path=value), name=f"sts-{split}",
                                               batch_size=args.batch_size) for split in splits]
        else:
            path, split = Path(value), None
            if not path.exists() and "@" in value:  # FOLDER@SPLIT or owner/name@split
                base, maybe = value.rsplit("@", 1)
                if Path(base).is_dir() or (not Path(base).exists() and looks_like_hub_id(base)):
                    path, split = Path(base), maybe
            if path.is_dir() and not any((path / f).is_file() for f in ("dataset_info.json", "state.json",
                                                                       "dataset_dict.json")):
                raise ValueError(f"--data {value}: a folder, but neither an STS-B folder (with stsb/ inside, laid out "
                                 "like shared/data) nor one written by datasets' save_to_disk")
            found = [STSEvaluator.from_dataset(str(path), columns=columns, split=split,
                                               skip_bad_rows=args.skip_bad_rows, batch_size=args.batch_size)]
        for ev in found:
            taken = {e.name for e in evaluators}
            if ev.name in taken:  # two files called pairs.csv: pairs, pairs-2
                unique = next(f"{ev.name}-{i}" for i in range(2, len(taken) + 3) if f"{ev.name}-{i}" not in taken)
                renamed = STSEvaluator(ev.sentences1, ev.sentences2, ev.scores, name=unique, batch_size=args.batch_size)
                renamed.pairs, ev = ev.pairs, renamed
            evaluators.append(ev)
            lines.append(f"data: {ev.name} = {ev.source}")
            if ev.pairs is not None and ev.pairs.skipped:
                first = "; ".join(ev.pairs.first_skipped.values())
                lines.append(f"  {ev.pairs.skipped_summary()} (first of each: {first})")
    return evaluators, lines


def _join_tables(tables: list) -> Any:
    """One :func:`~workbench.evaluation.compare` table from several, each of other models."""
    import pandas as pd

    table = pd.concat(tables) if len(tables) > 1 else tables[0].copy()
    table.attrs = {"metrics": {m: v for t in tables for m, v in t.attrs["metrics"].items()},
                   "primary": tables[0].attrs["primary"]}
    return table


def cmd_train(args: argparse.Namespace) -> int:
    from workbench.recipes import load_recipe, recipe_summary, run_recipe
    from workbench.training.events import format_event

    recipe = load_recipe(args.recipe, args.set or ())
    wanted = "distill" if args.command == "distill" else "train"
    if recipe.kind != wanted:
        raise ValueError(f"{recipe.path} is a {recipe.kind} recipe: run it with `workbench {recipe.kind}`")
    # Under torchrun / accelerate launch every process runs this; one of them speaks (events come
    # from the main process only anyway).
    from workbench.training.runs import launch_rank

    main_process = launch_rank() == 0
    if main_process:
        print(recipe_summary(recipe))
    if args.allow_changes and not args.resume:
        raise ValueError("--allow-changes applies to --resume only")
    result = run_recipe(recipe, run_dir=args.run_dir, callbacks=[lambda e: print(format_event(e), flush=True)],
                        resume=args.resume, device=args.device, allow_changes=args.allow_changes,
                        overwrite=args.overwrite)
    if not main_process:
        return 0
    table = {k: v for k, v in result.metrics.items() if k.startswith(("sts-dev", "sts-test", "mse"))}
    if table:
        from workbench.evaluation import format_metrics

        print(format_metrics(table))
    print(f"run folder: {result.run_dir}\nmodel: {result.model_path} (its README.md is the model card)")
    if args.export:
        _export_run_model(result, args.export, recipe)
    return 0


# `train/distill --export`: what each choice exports (backend, optimization level, quantization).
EXPORT_PRESETS = {"onnx": ("onnx", None, None), "int8": ("onnx", "O3", "int8"),
                  "openvino": ("openvino", None, None), "openvino-int8": ("openvino", None, "int8")}


def _runs_on(model) -> str:
    """Where a loaded model's transformer runs, for the CLI's one-line summary."""
    if model.backend == "torch":
        return f"{model.device}"
    if model.backend == "openvino":
        return f"OpenVINO, {model.transformer.file.name}, {model.transformer.precision}"
    return f"onnxruntime, {model.transformer.file.name}"


def _export_run_model(result, preset: str, recipe) -> None:
    """Add ONNX graphs (or OpenVINO models) to the run's model folder and say how well the exported model does on STS-B test."""
    from workbench.export import export_onnx, export_openvino
    from workbench.models import load_model

    backend, optimize, quantize = EXPORT_PRESETS[preset]
    print(f"\nexporting the model ({preset})")
    say = lambda line: print(f"  {line}", flush=True)  # noqa: E731
    if backend == "openvino":
        exported = export_openvino(result.model_path, result.model_path, quantize=quantize, overwrite=True, log=say)
    else:
        exported = export_onnx(result.model_path, result.model_path, optimize=optimize, quantize=quantize,
                               overwrite=True, log=say)
    print(exported.summary())
    if recipe.eval.sts_test:
        from workbench.data import load_stsb
        from workbench.evaluation import STSEvaluator

        evaluator = STSEvaluator.from_dataset(load_stsb("test"), name="sts-test")
        score = evaluator(load_model(result.model_path, backend=backend))[evaluator.primary_metric]
        torch_score = result.metrics.get(evaluator.primary_metric)
        versus = f" (torch: {torch_score:.4f})" if torch_score is not None else ""
        print(f"{exported.file}: {evaluator.primary_metric} = {score:.4f}{versus}")


def _backend(args: argparse.Namespace) -> dict:
    """load_model's backend arguments from --backend / --onnx-file / --openvino-file."""
    if args.onnx_file and args.backend != "onnx":
        raise ValueError("--onnx-file picks an ONNX graph: use it with --backend onnx")
    if getattr(args, "openvino_file", None) and args.backend != "openvino":
        raise ValueError("--openvino-file picks an OpenVINO model: use it with --backend openvino")
    if args.backend == "onnx":
        return {"backend": "onnx", "file_name": args.onnx_file}
    if args.backend == "openvino":
        return {"backend": "openvino", "file_name": args.openvino_file}
    return {}


def cmd_export(args: argparse.Namespace) -> int:
    from workbench.export import export_onnx, export_openvino

    say = lambda line: print(line, flush=True)  # noqa: E731
    if args.backend == "openvino":
        if args.optimize:
            raise ValueError("--optimize is onnxruntime's graph optimization; OpenVINO optimizes when it loads the model")
        result = export_openvino(args.model, args.out, quantize=args.quantize, overwrite=args.overwrite, log=say)
    else:
        result = export_onnx(args.model, args.out, optimize=args.optimize, quantize=args.quantize,
                             overwrite=args.overwrite, log=say)
    print(result.summary())
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from workbench.recipes import assigned_text, load_recipe, recipe_summary
    from workbench.sweep import Param, Sweep, SweepError, format_sweep_event

    if not args.grid and not args.range:
        raise SweepError("nothing to search: give --grid section.key=v1,v2 (or --range section.key=low..high)")
    sampler = args.sampler or ("random" if args.random else "grid")
    if args.random and sampler != "random":
        raise SweepError(f"--random N is a random sweep; with --sampler {sampler} give --trials N")
    trials = args.random or args.trials
    recipe = load_recipe(args.recipe, args.set or ())
    params = [*(Param.grid(t) for t in args.grid or ()), *(Param.range(t) for t in args.range or ())]
    sweep = Sweep(recipe, params, out=args.out, sampler=sampler, trials=trials, seed=args.seed,
                  objective=args.objective, direction="minimize" if args.minimize else "maximize",
                  budget_minutes=args.budget_minutes, trial_steps=args.trial_steps,
                  keep_models="all" if args.keep_models else "best", overwrite=args.overwrite)
    print(recipe_summary(recipe))
    for p in params:
        print(f"  searching {p.describe()}")

    def show(event) -> None:
        line = format_sweep_event(event, sweep.objective, sweep.trials)
        if line is not None:
            print(line, flush=True)
        elif args.verbose:
            from workbench.training.events import format_event

            print(f"  [trial {event.number + 1}] {format_event(event.event)}", flush=True)

    done = sweep.run(callbacks=[show], device=args.device)
    print(f"results: {Path(args.out) / 'results.csv'}")
    if done.best is not None:
        print(f"best trial: {done.best.run_dir}; run its settings in full with:\n  workbench {recipe.kind} {args.recipe} "
              + " ".join(f"--set {shlex.quote(f'{k}={assigned_text(v)}')}" for k, v in done.best.params.items()))
    return 0 if done.best is not None else 1


def cmd_clean(args: argparse.Namespace) -> int:
    from workbench.training.disk import clean_runs

    if args.keep is not None and args.keep < 0:
        raise ValueError(f"--keep {args.keep}: give how many of the newest models to keep (0 or more)")
    keep = args.keep if args.keep is not None else (0 if args.models else None)
    report = clean_runs(args.root, keep_models=keep, dry_run=args.dry_run)
    for line in report.lines():
        print(line)
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    from workbench.quickstart import QuickstartConfig, run_quickstart

    config = QuickstartConfig.smoke() if args.smoke else QuickstartConfig()
    given = {"out": args.out, "steps": args.steps, "model": args.model, "projection": args.projection}
    run_quickstart(config.replace(**{k: v for k, v in given.items() if v is not None}))
    return 0


def _backend_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=["torch", "onnx", "openvino"], default="torch",
                        help="torch; onnx: run the graph under the folder's onnx/ in onnxruntime (CPU); "
                             "openvino: run the model under openvino/ in OpenVINO (CPU)")
    parser.add_argument("--onnx-file", default=None, help="with --backend onnx: which graph, e.g. "
                        "onnx/model_qint8_avx2.onnx (default: the one `workbench export` made last)")
    parser.add_argument("--openvino-file", default=None, help="with --backend openvino: which model, e.g. "
                        "openvino/openvino_model_qint8_quantized.xml (default: the one `workbench export` made last)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench", description="A workbench for sentence embeddings.")
    sub = parser.add_subparsers(dest="command", required=True)

    enc = sub.add_parser("encode", help="encode texts (arguments or a file) into a .npy array")
    enc.add_argument("texts", nargs="*", help="texts to encode")
    enc.add_argument("--file", help="a .txt file (one text per line) or a csv/tsv/jsonl/parquet file")
    enc.add_argument("--column", default="sentence", help="the text column of a table file (default: sentence)")
    enc.add_argument("--model", default=DEFAULT_MODEL)
    enc.add_argument("--out", default="embeddings.npy", help="the .npy to write (an existing file needs --overwrite)")
    enc.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    enc.add_argument("--batch-size", type=int, default=32)
    enc.add_argument("--normalize", action="store_true", help="scale embeddings to unit length")
    enc.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best present)")
    _backend_options(enc)
    enc.add_argument("--quiet", action="store_true", help="no progress bar")
    enc.set_defaults(func=cmd_encode)

    ec = sub.add_parser("encode-corpus", help="encode a large corpus in resumable chunks into a .npy (bounded memory)")
    ec.add_argument("source", help="a .txt (one text per line), .tsv, .csv, .jsonl or .parquet file")
    ec.add_argument("--out", required=True, help="the .npy to write; an interrupted run into it resumes")
    ec.add_argument("--column", default="sentence", help="the text column of a table file (default: sentence)")
    ec.add_argument("--model", default=DEFAULT_MODEL)
    ec.add_argument("--max-seq-length", type=int, default=None, help="truncate texts to this many tokens")
    ec.add_argument("--batch-size", type=int, default=64)
    ec.add_argument("--chunk-size", type=int, default=4096, help="texts per resumable chunk (default: 4096)")
    ec.add_argument("--normalize", action="store_true", help="scale embeddings to unit length")
    ec.add_argument("--device", default=None, help="cpu, cuda or mps (default: the best present)")
    ec.add_argument("--devices", default=None, help="one worker process per device, e.g. cuda:0,cuda:1 "
                    "(default: every GPU when there are several)")
    ec.add_argument("--workers", type=int, default=1, help="processes sharing the CPU (default: 1)")
    ec.add_argument("--restart", action="store_true", help="start over instead of resuming an interrupted run")
    ec.add_argument("--overwrite", action="store_true", help="replace an existing finished --out")
    ec.add_argument("--quiet", action="store_true", help="no progress bar")
    ec.set_defaults(func=cmd_encode_corpus)

    ev = sub.add_parser(
        "eval", help="evaluate models on STS-B or on your own scored pairs; several models and data sets give one table",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Spearman/Pearson correlation of the models' similarities (cosine, manhattan, euclidean, "
                    "dot) with gold scores, as sentence-transformers' EmbeddingSimilarityEvaluator computes them.",
        epilog="""what --data can be (repeat it for several data sets):
  a folder holding stsb/ (laid out like shared/data; the default is $WORKBENCH_DATA): STS-B, the --splits of it
  a .csv/.tsv/.jsonl/.json/.parquet file of scored pairs (TSV is read with quoting off)
  a folder written by datasets' save_to_disk; FOLDER@SPLIT picks a split of a DatasetDict
  a Hugging Face hub id (owner/name, or owner/name@split) when the hub is on

columns: sentence1,sentence2,score when present; else two text columns and one numeric column are found by
themselves; otherwise name them with --columns S1,S2,SCORE. A --columns belongs to the --data just before it;
one given before the first --data applies to every --data without its own. Score scales do not matter.

bad rows of a file or data set (a non-numeric, missing or NaN score, an empty sentence, a pair seen before):
an error naming the file, line/row and column; --skip-bad-rows skips them and says how many, and why.
At least 3 pairs are needed. STS-B folders are taken as published (they repeat a few pairs).

several models or data sets: one table of spearman_cosine (model x data set); --json has every metric
(one model: a flat {key: value}; several: one such dict per model) and --report an HTML bar chart.""")
    ev.add_argument("--model", action="append", default=None,
                    help=f"a model name or folder; repeat for several (default: {DEFAULT_MODEL})")
    ev.add_argument("--data", action=_DataAction, default=None, metavar="FILE_OR_DATASET",
                    help="scored pairs or an STS-B folder (see below); repeatable (default: STS-B from $WORKBENCH_DATA)")
    ev.add_argument("--columns", action=_ColumnsAction, default=None, metavar="S1,S2,SCORE",
                    help="the sentence1, sentence2 and score columns of the --data before it")
    ev.add_argument("--splits", default=None, help="the STS-B splits of an STS-B folder (default: dev,test)")
    ev.add_argument("--skip-bad-rows", action="store_true", help="skip bad rows of files and data sets (counted)")
    ev.add_argument("--batch-size", type=int, default=32)
    ev.add_argument("--device", default=None)
    _backend_options(ev)
    ev.add_argument("--json", default=None, help="also write the metrics to this JSON file")
    ev.add_argument("--report", default=None, metavar="OUT.html",
                    help="also write an HTML report with a bar chart (self-contained: opens offline)")
    ev.add_argument("--overwrite", action="store_true", help="replace an existing --json or --report file")
    ev.set_defaults(func=cmd_eval)

    for name, text in (("train", "train a model from a recipe (e.g. recipes/offline-b-mnrl-minilm.toml)"),
                       ("distill", "distill a student from a teacher with a recipe (e.g. recipes/offline-a-distill.toml)")):
        tr = sub.add_parser(name, help=text)
        tr.add_argument("recipe", help="a recipe file or the name of one in recipes/")
        tr.add_argument("--run-dir", default=None, help="where the run goes (default: runs/NAME-TIMESTAMP)")
        tr.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                        help="override a recipe value, e.g. --set train.max_steps=100 (repeatable)")
        tr.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
        tr.add_argument("--allow-changes", action="store_true",
                        help="with --resume: go on with settings that differ from the run's (recorded in its log and card)")
        tr.add_argument("--overwrite", action="store_true", help="start afresh in a --run-dir that holds an earlier run")
        tr.add_argument("--device", default=None)
        tr.add_argument("--export", choices=sorted(EXPORT_PRESETS), default=None,
                        help="also export the final model: onnx (fp32) or int8 (O3-optimized, dynamic int8 for this "
                             "CPU), needing the onnx extra; openvino (fp32 IR) or openvino-int8 (NNCF static int8), "
                             "needing the openvino extra")
        tr.set_defaults(func=cmd_train)

    ex = sub.add_parser("export", help="export a model for fast CPU encoding (ONNX or OpenVINO, optionally int8)")
    ex.add_argument("model", help="a model folder or name")
    ex.add_argument("--backend", default="onnx", choices=["onnx", "openvino"],
                    help="the runtime to export for: onnx (onnxruntime) or openvino")
    ex.add_argument("--optimize", choices=["O1", "O2", "O3", "O4"], default=None,
                    help="onnx only: onnxruntime graph optimization level (O3: fusions + fast GELU; O4 is fp16, GPU only)")
    ex.add_argument("--quantize", choices=["int8"], default=None,
                    help="int8: dynamic quantization for this CPU (onnx), or NNCF static quantization calibrated on "
                         "general sentences (openvino)")
    ex.add_argument("--out", required=True, help="the folder to write (a full sentence-transformers folder + onnx/ or openvino/)")
    ex.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    ex.set_defaults(func=cmd_export)

    sw = sub.add_parser("sweep", help="run a recipe over a grid, random draws or Optuna TPE of its settings; "
                                      "writes OUT/results.csv")
    sw.add_argument("recipe", help="a recipe file or the name of one in recipes/")
    sw.add_argument("--grid", action="append", metavar="SECTION.KEY=V1,V2",
                    help="values to try for one recipe field, e.g. --grid train.lr=1e-5,5e-5 (repeatable)")
    sw.add_argument("--range", action="append", metavar="SECTION.KEY=LOW..HIGH[:log]",
                    help="a range to draw from (random and tpe), e.g. --range train.lr=1e-5..1e-3:log")
    sw.add_argument("--random", type=int, default=None, metavar="N", help="N random draws instead of the full grid")
    sw.add_argument("--sampler", choices=["grid", "random", "tpe"], default=None,
                    help="tpe: Optuna's TPE sampler with pruning of bad trials (needs optuna); give --trials")
    sw.add_argument("--trials", type=int, default=None, help="how many trials a random or tpe sweep runs")
    sw.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="fix a recipe value for every trial")
    sw.add_argument("--budget-minutes", type=float, default=None, help="start no trial after this; stop the running one")
    sw.add_argument("--trial-steps", type=int, default=None, help="cap each trial at this many training steps")
    sw.add_argument("--objective", default="sts-dev_spearman_cosine", help="the dev metric to choose by")
    sw.add_argument("--minimize", action="store_true", help="a lower objective is better")
    sw.add_argument("--seed", type=int, default=0, help="seeds random draws and TPE")
    sw.add_argument("--keep-models", action="store_true", help="keep every trial's model (default: the best one only)")
    sw.add_argument("--out", required=True, help="the sweep's folder (a restart with the same settings resumes it)")
    sw.add_argument("--overwrite", action="store_true", help="replace a different sweep in --out")
    sw.add_argument("--device", default=None)
    sw.add_argument("--verbose", action="store_true", help="also print each trial's training log")
    sw.set_defaults(func=cmd_sweep)

    cl = sub.add_parser("clean", help="free the disk that finished runs no longer need (best/, checkpoints/; with "
                                      "--models, old models too); config.json and the curves always stay")
    cl.add_argument("root", nargs="?", default="runs", help="the folder of runs, a sweep's folder or one run (default: runs)")
    cl.add_argument("--models", action="store_true", help="also remove the runs' models (and the resume state of "
                    "unfinished runs); --keep N keeps the N newest")
    cl.add_argument("--keep", type=int, default=None, metavar="N",
                    help="remove the models of all but the N newest runs that have one (implies --models)")
    cl.add_argument("--dry-run", action="store_true", help="remove nothing; print what would go and how much it frees")
    cl.set_defaults(func=cmd_clean)

    qs = sub.add_parser("quickstart", help="encode, evaluate, train briefly and write an HTML report (offline, ~3 min on CPU)")
    qs.add_argument("--out", default=None, help="output folder for report.html, run/ and metrics.json (default: workbench-out)")
    qs.add_argument("--steps", type=int, default=None, help="training steps (default: 40; 4 with --smoke)")
    qs.add_argument("--model", default=None, help=f"the model to encode and evaluate with (default: {DEFAULT_MODEL})")
    qs.add_argument("--projection", choices=["pca", "umap"], default=None, help="the 2-D projection (default: pca)")
    qs.add_argument("--smoke", action="store_true", help="a tiny run (seconds of work), for tests")
    qs.set_defaults(func=cmd_quickstart)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``workbench`` command."""
    args = build_parser().parse_args(argv)
    if os.environ.get("WORKBENCH_DEBUG"):
        return args.func(args)
    from workbench.data import DataError
    from workbench.export import ExportError
    from workbench.models import ModelNotFoundError
    from workbench.training import TrainingError
    from workbench.training.runs import RunFolderBusy

    try:
        return args.func(args)
    except (DataError, ModelNotFoundError, FileNotFoundError, ValueError, TypeError, TrainingError, RunFolderBusy,
            ExportError, ImportError) as err:
        print(f"workbench {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a full disk, a read-only folder found during the work: the system's reason, in one line
        where = f" ({err.filename})" if err.filename else ""
        print(f"workbench {args.command}: error: {err.strerror or err}{where}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"workbench {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # unforeseen: keep the traceback, and say what to do with it
        import traceback

        traceback.print_exc()
        print(f"workbench {args.command}: unexpected error ({type(err).__name__}: {err}). This is probably a bug: "
              "please report it with the command line and the traceback above (WORKBENCH_DEBUG=1 shows the bare "
              "traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
