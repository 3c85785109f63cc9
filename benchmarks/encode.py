"""Encoding throughput: workbench vs sentence-transformers (and model2vec), side by side in one process.

Each row runs the two libraries on the **same** model files (the same folder, the same ONNX
graph, the same static table), on the same sentences, batch size and threads. Runs alternate
between the contenders so that machine noise hits them alike; figures are medians, and the
ratio is throughput over the reference's. Outputs are compared first (max abs diff), and each
row reports the quality of what was encoded: STS-B test spearman (cosine) from those embeddings.

Backends (``--backends``, comma-separated, or ``all``):

- ``torch``: workbench's torch path vs sentence-transformers' (the default backend);
- ``onnx``, ``onnx-O2``, ``onnx-O3``, ``onnx-int8``, ``onnx-O2-int8``, ``onnx-O3-int8``: workbench's onnxruntime backend vs sentence-transformers'
  ``backend="onnx"`` on the same graph (needs sentence-transformers' ``[onnx]`` extra, which
  installs with sentence-transformers 5.x only: ``bash benchmarks/onnx-env.sh`` makes that
  environment); each is also set against sentence-transformers' torch path;
- ``openvino``, ``openvino-int8``: workbench's OpenVINO backend on the fp32 IR (run in the
  precision OpenVINO picks for this CPU: bf16 where it has bf16 units) and on NNCF's static int8
  IR, against sentence-transformers' torch path, and against its ``backend="openvino"`` on the
  same file when optimum-intel is installed;
- ``static``: a workbench static model vs sentence-transformers' ``StaticEmbedding`` and
  model2vec's ``StaticModel`` on the same table, and against sentence-transformers' torch
  all-MiniLM-L6-v2;
- ``student``: ``--student DIR`` (e.g. a pruned, int8-exported distilled student) in workbench
  vs sentence-transformers' torch all-MiniLM-L6-v2.

Inputs (``--inputs``): ``short`` (the 5,384 distinct STS-B test+dev sentences) and ``long``
(Wikipedia sentences joined into ~200-token paragraphs).

    WORKBENCH_DATA=../shared/data python benchmarks/encode.py                  # torch, static
    WORKBENCH_DATA=../shared/data .venv-onnx/bin/python benchmarks/encode.py --backends all \\
        --static runs/offline-static/model --student runs/offline-a-int8/model
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

warnings.filterwarnings("ignore")
ALL = ("torch", "onnx", "onnx-O2", "onnx-O3", "onnx-int8", "onnx-O2-int8", "onnx-O3-int8", "openvino", "openvino-int8",
       "static", "student")
OPENVINO_FILES = {"openvino": "openvino/openvino_model.xml", "openvino-int8": "openvino/openvino_model_qint8_quantized.xml"}


def _sentences(args) -> tuple[list[str], dict]:
    from workbench.data import load_stsb

    test = load_stsb("test")
    dev = load_stsb("dev")
    texts = list(dict.fromkeys(list(test["sentence1"]) + list(test["sentence2"]) + list(dev["sentence1"]) + list(dev["sentence2"])))
    return texts, {"s1": list(test["sentence1"]), "s2": list(test["sentence2"]), "score": np.asarray(test["score"], float)}


def _level(backend: str) -> str | None:
    """The optimization level an ``onnx-...`` backend names (``onnx-O3-int8`` -> ``O3``), if any."""
    return next((p for p in backend.split("-") if p in ("O1", "O2", "O3", "O4")), None)


def _graph_name(backend: str) -> str:
    """``onnx``, ``onnx-O2``, ``onnx-int8``, ``onnx-O3-int8``, ... -> the file sentence-transformers' naming gives it."""
    from workbench.export import quantization_settings
    from workbench.models.onnx_backend import cpu_isa

    level = _level(backend)
    name = "model" + (f"_{level}" if level else "")
    if "int8" in backend.split("-"):
        name += "_" + quantization_settings(cpu_isa())["suffix"]
    return f"onnx/{name}.onnx"


def _make_graphs(onnx_dir: str, backends: list[str], model_path: str) -> None:
    """The optimized and int8 graphs the backends name, made from the folder's ``onnx/model.onnx`` where missing."""
    from transformers import AutoConfig

    from workbench.export import _optimize, _quantize, quantization_settings
    from workbench.models.onnx_backend import cpu_isa

    folder = Path(onnx_dir)
    config = AutoConfig.from_pretrained(model_path)
    for backend in backends:
        level = _level(backend)
        optimized = folder / f"onnx/model_{level}.onnx" if level else folder / "onnx/model.onnx"
        if not optimized.exists():
            _optimize(folder / "onnx/model.onnx", optimized, level, config)
        target = folder / _graph_name(backend)
        if not target.exists():
            _quantize(optimized, target, quantization_settings(cpu_isa()))


def _paragraphs(n: int, tokenizer) -> list[str]:
    """Consecutive Wikipedia sentences joined until a paragraph reaches ~200 tokens (file order: no shuffling)."""
    from workbench.data import load_sentences

    sents = list(load_sentences(sources=["wikipedia"], seed=None)["sentence"])
    out, cur, length = [], [], 0
    for s in sents:
        cur.append(s)
        length += len(tokenizer(s, add_special_tokens=False)["input_ids"])
        if length >= 200:
            out.append(" ".join(cur))
            cur, length = [], 0
            if len(out) == n:
                break
    return out


def _sts(emb: np.ndarray, index: dict[str, int], gold: dict) -> float:
    from scipy.stats import spearmanr

    a = emb[[index[s] for s in gold["s1"]]]
    b = emb[[index[s] for s in gold["s2"]]]
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return float(spearmanr(gold["score"], cos).statistic)


def _race(contenders: dict, texts: list[str], repeats: int) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Median seconds per contender (alternating order), and each one's output."""
    for fn in contenders.values():
        fn(texts[:256])  # warm-up: allocations, kernel choice, ORT's first run
    times: dict[str, list[float]] = {k: [] for k in contenders}
    outs: dict[str, np.ndarray] = {}
    names = list(contenders)
    for rep in range(repeats):
        order = names if rep % 2 == 0 else names[::-1]
        for name in order:
            start = time.perf_counter()
            outs[name] = np.asarray(contenders[name](texts), dtype=np.float32)
            times[name].append(time.perf_counter() - start)
        print("  repeat " + str(rep + 1) + ": " + ", ".join(f"{k} {times[k][-1]:.2f}s" for k in names),
              file=sys.stderr, flush=True)
    return {k: statistics.median(v) for k, v in times.items()}, outs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--backends", default="torch,static", help=f"comma-separated: {', '.join(ALL)}, or all")
    parser.add_argument("--inputs", default="short", help="short, long or short,long")
    parser.add_argument("--batch-sizes", default="32", help="comma-separated, e.g. 32,128")
    parser.add_argument("--long-paragraphs", type=int, default=384, help="how many ~200-token paragraphs")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--onnx-dir", default=None, help="an exported folder (default: a fresh export of --model into "
                        "a temporary folder); the O2/O3 and int8 graphs the backends name are made in it")
    parser.add_argument("--openvino-dir", default=None, help="a folder exported with `workbench export --backend openvino "
                        "--quantize int8` (default: a fresh export of --model into a temporary folder)")
    parser.add_argument("--static", default=None, help="a static model folder (default: distill one from --model)")
    parser.add_argument("--student", default=None, help="a (pruned, exported) student folder for the student row")
    parser.add_argument("--student-backend", default="onnx", choices=["torch", "onnx", "openvino"])
    parser.add_argument("--json", default=None, help="also write the rows here")
    args = parser.parse_args(argv)

    from sentence_transformers import SentenceTransformer

    from workbench import load_model
    from workbench.models import resolve_model_path

    backends = ALL if args.backends == "all" else tuple(b.strip() for b in args.backends.split(","))
    unknown = [b for b in backends if b not in ALL]
    if unknown:
        parser.error(f"unknown backends {unknown}; choose from {', '.join(ALL)}")
    if "student" in backends and not args.student:
        parser.error("the student row needs --student DIR")
    path = str(resolve_model_path(args.model))
    short, gold = _sentences(args)
    st_torch = SentenceTransformer(path, device="cpu")
    inputs = {}
    for kind in args.inputs.split(","):
        inputs[kind.strip()] = short if kind.strip() == "short" else _paragraphs(args.long_paragraphs, st_torch.tokenizer)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    scratch = Path(tempfile.mkdtemp(prefix="wb-bench-"))
    onnx_dir = args.onnx_dir
    if any(b.startswith("onnx") for b in backends) and onnx_dir is None:
        from workbench.export import export_onnx

        onnx_dir = str(scratch / "onnx")
        export_onnx(path, onnx_dir)
    if any(b.startswith("onnx") for b in backends):
        _make_graphs(onnx_dir, [b for b in backends if b.startswith("onnx")], path)
    ov_dir = args.openvino_dir
    if any(b.startswith("openvino") for b in backends) and ov_dir is None:
        from workbench.export import export_openvino

        ov_dir = str(scratch / "openvino")
        export_openvino(path, ov_dir, quantize="int8")
    try:
        import optimum.onnxruntime  # noqa: F401

        st_onnx_ok = True
    except ImportError:
        st_onnx_ok = False
    try:
        import optimum.intel  # noqa: F401

        st_ov_ok = True
    except ImportError:
        st_ov_ok = False

    def st_fn(model, bs):
        return lambda texts: model.encode(texts, batch_size=bs, show_progress_bar=False)

    def wb_fn(model, bs):
        return lambda texts: model.encode(texts, batch_size=bs, progress=False)

    rows = []
    for kind, texts in inputs.items():
        index = {t: i for i, t in enumerate(texts)}
        for bs in batch_sizes:
            for backend in backends:
                contenders, reference, files = {}, "sentence-transformers torch", ""
                if backend == "torch":
                    contenders = {"workbench torch": wb_fn(load_model(path, device="cpu"), bs),
                                  "sentence-transformers torch": st_fn(st_torch, bs)}
                elif backend.startswith("onnx"):
                    from workbench.models.onnx_backend import onnx_files

                    graphs = onnx_files(onnx_dir)
                    wanted = _graph_name(backend)
                    if wanted not in graphs:
                        print(f"skip {backend}: no such graph in {onnx_dir} ({graphs})", file=sys.stderr)
                        continue
                    files = wanted
                    contenders = {f"workbench {backend}": wb_fn(load_model(onnx_dir, backend="onnx", file_name=wanted), bs)}
                    if st_onnx_ok:
                        theirs = SentenceTransformer(onnx_dir, device="cpu", backend="onnx", model_kwargs={"file_name": wanted})
                        contenders[f"sentence-transformers {backend}"] = st_fn(theirs, bs)
                        reference = f"sentence-transformers {backend}"
                    contenders["sentence-transformers torch"] = st_fn(st_torch, bs)
                elif backend.startswith("openvino"):
                    files = OPENVINO_FILES[backend]
                    ours = load_model(ov_dir, backend="openvino", file_name=files)
                    name = f"workbench {backend} ({ours.transformer.precision})"
                    contenders = {name: wb_fn(ours, bs)}
                    if st_ov_ok:
                        theirs = SentenceTransformer(ov_dir, device="cpu", backend="openvino", model_kwargs={"file_name": files})
                        contenders[f"sentence-transformers {backend}"] = st_fn(theirs, bs)
                        reference = f"sentence-transformers {backend}"
                    contenders["sentence-transformers torch"] = st_fn(st_torch, bs)
                elif backend == "static":
                    folder = args.static
                    if folder is None:
                        from workbench.static import distill_static

                        folder = str(scratch / "static")
                        if not Path(folder).exists():
                            distill_static(load_model(path, device="cpu"), progress=False).save(folder)
                    ours = load_model(folder)
                    files = folder
                    contenders = {"workbench static": wb_fn(ours, bs),
                                  "sentence-transformers StaticEmbedding": st_fn(SentenceTransformer(folder, device="cpu"), bs)}
                    try:
                        from model2vec import StaticModel

                        module = ours.layers[0]
                        m2v = StaticModel(module.embedding.weight.detach().numpy(), module.tokenizer.backend_tokenizer,
                                          normalize=ours.normalizes)
                        contenders["model2vec StaticModel"] = lambda texts, m=m2v, b=bs: m.encode(texts, batch_size=b)
                    except ImportError:
                        print("model2vec is not installed: no model2vec row", file=sys.stderr)
                    contenders["sentence-transformers torch"] = st_fn(st_torch, bs)
                    reference = "sentence-transformers StaticEmbedding"
                elif backend == "student":
                    files = args.student
                    student = load_model(args.student, backend=args.student_backend) if args.student_backend != "torch" \
                        else load_model(args.student, device="cpu")
                    contenders = {f"workbench student ({args.student_backend})": wb_fn(student, bs),
                                  "sentence-transformers torch": st_fn(st_torch, bs)}
                print(f"{kind} inputs, batch {bs}, {backend}: {', '.join(contenders)}", file=sys.stderr, flush=True)
                med, outs = _race(contenders, texts, args.repeats)
                for name, seconds in med.items():
                    row = {"inputs": kind, "texts": len(texts), "batch_size": bs, "backend": backend, "who": name,
                           "file": files, "sentences_per_s": len(texts) / seconds,
                           "vs_st_torch": med["sentence-transformers torch"] / seconds,
                           "vs_reference": med[reference] / seconds if reference in med else None,
                           "reference": reference}
                    if kind == "short":
                        row["sts_b_test"] = _sts(outs[name], index, gold)
                    first = next(iter(outs))
                    if name != first and outs[name].shape == outs[first].shape:
                        row["max_abs_diff_vs_" + first.replace(" ", "_")] = float(np.abs(outs[name] - outs[first]).max())
                    rows.append(row)
                    sts = f"  STS-B test {row['sts_b_test']:.4f}" if "sts_b_test" in row else ""
                    ref = f"  x{row['vs_reference']:.2f} vs {reference}" if row["vs_reference"] is not None and name != reference else ""
                    print(f"  {name:42s} {row['sentences_per_s']:8.0f}/s  x{row['vs_st_torch']:.2f} vs ST torch{ref}{sts}",
                          flush=True)
    meta = {"machine": f"{platform.machine()} {_cpu_name()}, {os.cpu_count()} cores", "torch": torch.__version__,
            "threads": torch.get_num_threads(), "python": platform.python_version(), "repeats": args.repeats}
    try:
        import onnxruntime
        import sentence_transformers
        import transformers

        meta.update({"onnxruntime": onnxruntime.__version__, "sentence_transformers": sentence_transformers.__version__,
                     "transformers": transformers.__version__})
    except ImportError:
        pass
    try:
        import openvino

        meta["openvino"] = openvino.__version__.split("-")[0]
    except ImportError:
        pass
    print(json.dumps(meta))
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n", encoding="utf-8")
    return 0


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


if __name__ == "__main__":
    raise SystemExit(main())
