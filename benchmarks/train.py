"""Training throughput: workbench's loop vs sentence-transformers' trainer, side by side.

The same recipe for both: a bert-tiny-shaped model (2 layers, hidden 128, all-MiniLM-L6-v2's
vocabulary) + Dense(128->256, tanh) + Normalize, MultipleNegativesRankingLoss (scale 20),
batch 256, AdamW lr 2e-5 with warmup, no-duplicate batches, on the offline B' data (Multi30k
caption pairs, SNLI triplets). Both start from the same saved weights. Each library trains
``--steps`` steps per data set; throughput is measured from the end of step ``--warmup`` to
the last step (steady state), and runs alternate between the libraries.

    WORKBENCH_DATA=../shared/data python benchmarks/train.py [--steps 12] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
import warnings

import torch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2, help="steps excluded from the timing")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")

    from transformers import BertConfig

    from workbench import build_model
    from workbench.data import load_caption_pairs, load_nli_triplets
    from workbench.models import resolve_model_path

    n = args.steps * args.batch_size
    datasets = {
        "caption pairs": load_caption_pairs("train").shuffle(seed=0).select(range(n)),
        "SNLI triplets": load_nli_triplets("all").shuffle(seed=0).select(range(n)),
    }
    config = BertConfig(vocab_size=30522, hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=512, max_position_embeddings=512)
    init = tempfile.mkdtemp(prefix="bench-init-")
    build_model(config, tokenizer=resolve_model_path("all-MiniLM-L6-v2"), dense=256, normalize=True,
                max_seq_length=128, seed=0, device="cpu").save(init)

    results = {}
    for name, data in datasets.items():
        times: dict[str, list[float]] = {"workbench": [], "sentence-transformers": []}
        for rep in range(args.repeats):
            order = [("workbench", _ours), ("sentence-transformers", _theirs)]
            for lib, fn in order if rep % 2 == 0 else order[::-1]:
                times[lib].append(fn(init, data, args))
                print(f"  {name}, repeat {rep + 1}: {lib} {times[lib][-1]:.0f} examples/s", flush=True)
        med = {k: statistics.median(v) for k, v in times.items()}
        results[name] = {"workbench": med["workbench"], "sentence-transformers": med["sentence-transformers"],
                         "ratio": med["workbench"] / med["sentence-transformers"]}

    print(f"\ntraining throughput, batch {args.batch_size}, steps {args.warmup + 1}..{args.steps} timed, "
          f"{torch.get_num_threads()} CPU threads, median of {args.repeats}:")
    for name, r in results.items():
        print(f"  {name:14s} workbench {r['workbench']:6.0f} ex/s | sentence-transformers {r['sentence-transformers']:6.0f} ex/s"
              f" | ratio {r['ratio']:.2f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"results": results, "python": platform.python_version(), "torch": torch.__version__,
                       "device": "cuda" if torch.cuda.is_available() else "cpu", **vars(args)}, fh, indent=2)
    return 0


def _ours(init: str, data, args) -> float:
    from workbench import load_model
    from workbench.losses import MultipleNegativesRankingLoss
    from workbench.training import Step, TrainConfig, Trainer

    model = load_model(init, device="cpu")
    stamps: dict[int, float] = {}

    def on_event(event):
        if isinstance(event, Step):
            stamps[event.step] = time.perf_counter()

    cfg = TrainConfig(lr=2e-5, batch_size=args.batch_size, max_steps=args.steps, warmup_ratio=0.1, log_every=1,
                      eval_at_start=False, weight_decay=0.0)
    Trainer(model, MultipleNegativesRankingLoss(model, scale=20.0), cfg, data, callbacks=[on_event]).fit()
    return (args.steps - args.warmup) * args.batch_size / (stamps[args.steps] - stamps[args.warmup])


def _theirs(init: str, data, args) -> float:
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.losses import MultipleNegativesRankingLoss
    from transformers import TrainerCallback

    model = SentenceTransformer(init, device="cpu")
    stamps: dict[int, float] = {}

    class Clock(TrainerCallback):
        def on_step_end(self, a, state, control, **kw):
            stamps[state.global_step] = time.perf_counter()

    targs = SentenceTransformerTrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="bench-st-"), per_device_train_batch_size=args.batch_size, learning_rate=2e-5,
        max_steps=args.steps, warmup_ratio=0.1, report_to="none", save_strategy="no", logging_steps=1000, use_cpu=True,
        batch_sampler="no_duplicates", disable_tqdm=True,
    )
    trainer = SentenceTransformerTrainer(model=model, args=targs, train_dataset=data,
                                         loss=MultipleNegativesRankingLoss(model, scale=20.0), callbacks=[Clock()])
    trainer.train()
    return (args.steps - args.warmup) * args.batch_size / (stamps[args.steps] - stamps[args.warmup])


if __name__ == "__main__":
    raise SystemExit(main())
