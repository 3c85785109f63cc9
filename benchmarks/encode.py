"""Encoding throughput: workbench vs sentence-transformers, side by side in one process.

Both libraries load the same folder (the packaged all-MiniLM-L6-v2 by default) and encode the
same STS-B sentences with the same batch size on the same device. Runs alternate between the
two so that machine noise hits both alike; the figure is the ratio of median times
(ours / theirs as throughput, so > 1 means workbench is faster). Outputs are checked to be
identical (max abs diff <= 1e-5) before any number is printed.

    WORKBENCH_DATA=../shared/data python benchmarks/encode.py [--batch-size 32] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time

import numpy as np
import torch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--splits", default="test,dev", help="STS-B splits whose sentences to encode")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default=None, help="cpu / cuda (default: best present)")
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)

    from sentence_transformers import SentenceTransformer

    from workbench import load_model
    from workbench.data import load_stsb
    from workbench.models import pick_device, resolve_model_path

    device = pick_device(args.device)
    sentences: list[str] = []
    for split in args.splits.split(","):
        ds = load_stsb(split)
        sentences += list(ds["sentence1"]) + list(ds["sentence2"])
    sentences = list(dict.fromkeys(sentences))  # unique, first-seen order (not sorted: both libraries sort)

    path = str(resolve_model_path(args.model))
    ours = load_model(path, device=device)
    theirs = SentenceTransformer(path, device=str(device))

    def run_ours() -> np.ndarray:
        return ours.encode(sentences, batch_size=args.batch_size, progress=False)

    def run_theirs() -> np.ndarray:
        return theirs.encode(sentences, batch_size=args.batch_size, show_progress_bar=False)

    def timed(fn) -> tuple[float, np.ndarray]:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start, out

    # Warm up both (first calls pay for allocations and kernel selection).
    ours.encode(sentences[:256], batch_size=args.batch_size, progress=False)
    theirs.encode(sentences[:256], batch_size=args.batch_size, show_progress_bar=False)

    times: dict[str, list[float]] = {"workbench": [], "sentence-transformers": []}
    outs: dict[str, np.ndarray] = {}
    for rep in range(args.repeats):
        pair = [("workbench", run_ours), ("sentence-transformers", run_theirs)]
        for name, fn in pair if rep % 2 == 0 else pair[::-1]:
            seconds, out = timed(fn)
            times[name].append(seconds)
            outs[name] = out
        print(f"  repeat {rep + 1}: workbench {times['workbench'][-1]:.2f}s, "
              f"sentence-transformers {times['sentence-transformers'][-1]:.2f}s", file=sys.stderr)

    diff = float(np.abs(outs["workbench"] - outs["sentence-transformers"]).max())
    if diff > 1e-5:
        print(f"outputs differ: max abs diff {diff:.2e} > 1e-5; no speed figure for different results")
        return 1
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["sentence-transformers"] / med["workbench"]
    n = len(sentences)
    result = {
        "benchmark": "encode",
        "model": args.model,
        "sentences": n,
        "batch_size": args.batch_size,
        "device": str(device) if device.type != "cuda" else torch.cuda.get_device_name(),
        "cpu_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "repeats": args.repeats,
        "workbench_sentences_per_s": n / med["workbench"],
        "sentence_transformers_sentences_per_s": n / med["sentence-transformers"],
        "ratio": ratio,
        "max_abs_diff": diff,
    }
    print(f"encode {n} STS-B sentences ({args.splits}), batch {args.batch_size}, {result['device']}, "
          f"{args.repeats} alternating repeats, medians:")
    print(f"  workbench             {result['workbench_sentences_per_s']:8.0f} sentences/s")
    print(f"  sentence-transformers {result['sentence_transformers_sentences_per_s']:8.0f} sentences/s")
    print(f"  ratio (workbench / sentence-transformers throughput): {ratio:.2f}   max abs diff {diff:.1e}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
