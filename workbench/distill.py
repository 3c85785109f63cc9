"""Distillation: teacher embeddings as labels, PCA when the student is narrower, and students.

The recipe (seed A): encode the training sentences with the teacher once (cached on disk, keyed
by the teacher's weights and the exact texts), then train the student with MSE towards those
embeddings. A narrower student gets a PCA appended to the *teacher* as ``Dense(bias=False)``, as
sentence-transformers does, so the labels are the reduced teacher embeddings.

Example:
    >>> from workbench import load_model                                       # doctest: +SKIP
    >>> from workbench.training import TrainConfig                             # doctest: +SKIP
    >>> teacher = load_model("all-MiniLM-L6-v2")                               # doctest: +SKIP
    >>> student = make_student(teacher, keep_layers=[0, 3, 5])                 # doctest: +SKIP
    >>> student, trainer = distill(teacher, student, sentences, TrainConfig(lr=1e-4),
    ...                            eval_sentences=held_out, sts_dev=load_stsb("dev"))  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from workbench.atomic import atomic_write_text
from workbench.digest import array_digest, hash_tensors, hash_texts
from workbench.evaluation import MSEEvaluator, STSEvaluator
from workbench.losses import MSELoss
from workbench.models import Dense, EmbeddingModel, Normalize, Pooling, build_model, load_model, pick_device
from workbench.training import Event, TrainConfig, Trainer

CACHE_ENV = "WORKBENCH_CACHE"
BERT_TINY = {"num_hidden_layers": 2, "hidden_size": 128, "num_attention_heads": 2, "intermediate_size": 512}
_KEY_VERSION = b"workbench-teacher-embeddings-v1"
PCA_SENTENCES = 40_000  # at most this many training sentences fit the teacher's PCA (seed A's card)


# ----- teacher embeddings, cached ----------------------------------------------------------------
def default_cache_dir() -> Path:
    """``$WORKBENCH_CACHE`` if set, else ``~/.cache/workbench/teacher``."""
    value = os.environ.get(CACHE_ENV)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "workbench" / "teacher"


def teacher_fingerprint(teacher: EmbeddingModel) -> str:
    """A sha256 of everything that decides the teacher's embeddings.

    Covers the module chain (transformer shape, pooling modes, an appended PCA Dense,
    Normalize), truncation length, prompts, the tokenizer and every weight tensor's bytes. The
    folder the teacher came from is not part of it: the same weights loaded from two places
    share one cache entry, and weights changed in memory get a new one.
    """
    h = hashlib.sha256(repr(teacher).encode())
    for module in teacher.layers:
        settings = module.config() if isinstance(module, Pooling) else {
            k: getattr(module, k) for k in ("max_seq_length", "do_lower_case", "bias") if hasattr(module, k)
        }
        h.update(json.dumps([type(module).__name__, settings], sort_keys=True, default=str).encode())
    h.update(json.dumps([teacher.prompts, teacher.default_prompt_name], sort_keys=True).encode())
    h.update(_tokenizer_fingerprint(teacher.tokenizer).encode())
    hash_tensors(h, teacher.state_dict())
    return h.hexdigest()


def _tokenizer_fingerprint(tok: Any) -> str:
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:
        return json.dumps(sorted(tok.get_vocab().items()))
    spec = json.loads(backend.to_str())
    # Truncation and padding are set on the backend by each call: they are not the tokenizer's identity.
    spec.pop("truncation", None)
    spec.pop("padding", None)
    return json.dumps(spec, sort_keys=True)


def cache_key(teacher: EmbeddingModel, sentences: Sequence[str]) -> str:
    """sha256 over the teacher's fingerprint and the exact texts, in order."""
    h = hashlib.sha256(_KEY_VERSION)
    h.update(teacher_fingerprint(teacher).encode())
    hash_texts(h, sentences)  # length-prefixed: ["ab", "c"] != ["a", "bc"]
    return h.hexdigest()


def teacher_embeddings(
    teacher: EmbeddingModel | str | os.PathLike[str],
    sentences: Sequence[str],
    cache_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
    progress: bool | None = None,
    chunk_size: int = 4096,
    on_progress: Callable[[int, int, float], None] | None = None,
) -> np.ndarray:
    """The teacher's embeddings of ``sentences``, computed once and then read from disk.

    The array is written by :func:`workbench.corpus.encode_corpus`, the path ``workbench
    encode-corpus`` takes: streamed chunk by chunk into a memory-mapped ``.npy`` beside its final
    name (memory stays bounded), each finished chunk recorded with a digest of its texts, so an
    interrupted computation resumes at its first unfinished chunk. When done, a sidecar ``.json``
    records the shape and a sha256 of the data, and the file is renamed into place. A cache file
    whose shape or checksum does not match is recomputed, never trusted.

    Args:
        teacher: the teacher model (or a name/folder to load).
        sentences: the texts, in order.
        cache_dir: where cache files go; :func:`default_cache_dir` by default.
        batch_size: texts per forward pass.
        progress: show a progress bar; by default when there is more than one chunk.
        chunk_size: texts encoded (and written, and resumable) at a time.
        on_progress: called with ``(done, total, elapsed_s)`` texts when the encoding starts and
            as each chunk is written (never when the embeddings come from the cache).

    Returns:
        A float32 array of shape ``(len(sentences), teacher.dim)``.
    """
    model = _as_model(teacher)
    texts = _texts(sentences)
    n, dim = len(texts), model.dim
    if n == 0:
        return np.zeros((0, dim), dtype=np.float32)
    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    key = cache_key(model, texts)
    final, meta = folder / f"{key}.npy", folder / f"{key}.json"
    cached = _read_cache(final, meta, (n, dim))
    if cached is not None:
        return cached

    from workbench.corpus import encode_corpus

    encoded = folder / f"{key}.encoded.npy"
    if encoded.is_file() and meta.is_file():  # killed between writing the record and the rename
        done = _read_cache(encoded, meta, (n, dim))
        if done is not None:
            os.replace(encoded, final)
            return done
    # encode_corpus streams chunk by chunk into a memory-mapped {key}.encoded.npy.partial and
    # records each finished chunk with a digest of its texts: bounded memory, and an interrupted
    # computation resumes at its first unfinished chunk (with several GPUs, one process per GPU).
    callbacks = []
    if on_progress is not None:
        on_progress(0, n, 0.0)
        callbacks.append(lambda chunk: on_progress(chunk.done, chunk.total, chunk.elapsed_s))
    result = encode_corpus(model, texts, encoded, chunk_size=chunk_size, batch_size=batch_size, progress=progress,
                           callbacks=callbacks)
    embeddings = result.array(mmap=False)  # (n, dim), read once: checksummed and returned
    record = {"shape": [n, dim], "dtype": "float32", "sha256": array_digest(embeddings), "teacher": model.source, "texts": n}
    atomic_write_text(meta, json.dumps(record, indent=2) + "\n")  # meta first: a lone .npy is never trusted
    os.replace(encoded, final)
    return embeddings


def _read_cache(path: Path, meta_path: Path, shape: tuple[int, int]) -> np.ndarray | None:
    """The cached array, or ``None`` when missing or not matching its record (with a warning)."""
    if not path.is_file() or not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        arr = np.load(path, allow_pickle=False)
        ok = arr.shape == shape and list(shape) == meta["shape"] and arr.dtype == np.float32 and array_digest(arr) == meta["sha256"]
    except (OSError, ValueError, KeyError, TypeError, EOFError):
        ok = False
    if not ok:
        warnings.warn(f"teacher cache {path} is corrupt or truncated; recomputing it", UserWarning, stacklevel=3)
        return None
    return arr


# ----- PCA on the teacher ----------------------------------------------------------------------
def fit_pca(embeddings: np.ndarray, n_components: int) -> tuple[np.ndarray, np.ndarray]:
    """PCA by SVD of the centered matrix (after a QR step when it is tall), in float64.

    The components are the top right singular vectors. Sign convention: each component's
    entry of largest magnitude is positive (the one scikit-learn >= 1.5 uses), so the result
    does not depend on the LAPACK build.

    Args:
        embeddings: the samples, shape ``(n, dim)``.
        n_components: how many components (at most ``min(n, dim)``).

    Returns:
        ``(components, explained_variance_ratio)``, float32 ``(k, dim)`` and float64 ``(k,)``.
    """
    x = torch.as_tensor(np.asarray(embeddings), dtype=torch.float64)  # (n, dim)
    if x.ndim != 2:
        raise ValueError(f"PCA needs a 2-D (n, dim) array; got shape {tuple(x.shape)}")
    n, dim = x.shape
    if not 1 <= n_components <= min(n, dim):
        raise ValueError(f"n_components={n_components} must be in 1..min(n={n}, dim={dim}); fit on more sentences")
    centered = x - x.mean(dim=0)  # (n, dim)
    threads = torch.get_num_threads()
    # One LAPACK thread: on a busy CPU, spinning threads made a (300, 384) SVD take 3 s instead of
    # 0.02 s, and (40k, 768) 11 s instead of 2.7 s. (A process-wide setting, restored right after.)
    torch.set_num_threads(1)
    try:
        if n > 2 * dim:
            # X = QR: X and R share singular values and right singular vectors, and R is (dim, dim).
            centered = torch.linalg.qr(centered, mode="r").R  # (dim, dim)
        _, s, vh = torch.linalg.svd(centered, full_matrices=False)  # s (r,), vh (r, dim)
    finally:
        torch.set_num_threads(threads)
    comps = vh[:n_components]  # (k, dim)
    pivot = comps.gather(1, comps.abs().argmax(dim=1, keepdim=True))  # (k, 1)
    comps = comps * torch.where(pivot < 0, -1.0, 1.0)
    var = s**2
    ratio = (var[:n_components] / var.sum()).numpy()
    return comps.to(torch.float32).numpy(), ratio


def append_pca(teacher: EmbeddingModel, components: np.ndarray) -> EmbeddingModel:
    """The teacher followed by ``Dense(dim -> k, bias=False, identity)`` with the PCA components.

    The PCA mean is not subtracted (as in sentence-transformers). The teacher's modules are
    shared, not copied: the result is for producing labels, not for training.
    """
    comps = torch.as_tensor(np.asarray(components), dtype=torch.float32)  # (k, dim)
    if comps.ndim != 2 or comps.shape[1] != teacher.dim:
        raise ValueError(f"components of shape {tuple(comps.shape)} do not fit a teacher of dim {teacher.dim}")
    dense = Dense(teacher.dim, comps.shape[0], activation=None, bias=False)
    with torch.no_grad():
        dense.linear.weight.copy_(comps)
    reduced = EmbeddingModel([*teacher.layers, dense], prompts=teacher.prompts,
                             default_prompt_name=teacher.default_prompt_name, similarity_fn_name=teacher.similarity_fn_name)
    reduced.source = teacher.source
    return reduced.to(teacher.device).eval()


def reduce_teacher(
    teacher: EmbeddingModel | str | os.PathLike[str],
    dim: int,
    sentences: Sequence[str],
    cache_dir: str | os.PathLike[str] | None = None,
    batch_size: int = 64,
) -> EmbeddingModel:
    """The teacher with a PCA to ``dim`` components, fitted on its embeddings of ``sentences``, appended.

    Args:
        teacher: the teacher (or a name/folder to load); it is not changed.
        dim: the student's embedding size.
        sentences: the sample to fit on (sentence-transformers uses ~40k; at least ``dim``).
        cache_dir: cache for the teacher embeddings.
        batch_size: texts per forward pass.
    """
    model = _as_model(teacher)
    if dim >= model.dim:
        raise ValueError(f"PCA reduces: dim={dim} must be below the teacher's {model.dim}")
    components, _ = fit_pca(teacher_embeddings(model, sentences, cache_dir, batch_size), dim)
    return append_pca(model, components)


# ----- students --------------------------------------------------------------------------------
def make_student(
    teacher_or_path: EmbeddingModel | str | os.PathLike[str] | None = None,
    keep_layers: Sequence[int] | None = None,
    fresh_config: dict[str, Any] | Any | None = None,
    base: str | os.PathLike[str] | None = None,
    dense: int | None = None,
    normalize: bool | None = None,
    seed: int = 0,
    device: str | torch.device | None = None,
    pooling: str | None = None,
    activation: str | None = None,
) -> EmbeddingModel:
    """A student: (a) a copy of the teacher keeping ``keep_layers`` (and its pooling, Dense and
    Normalize), sharing no parameter with it; (b) ``fresh_config``: a random BERT with the
    teacher's tokenizer and pooling, bert-tiny shaped by default (:data:`BERT_TINY`, which a dict
    overrides; or pass a ``transformers`` config); (c) ``base``: any model name/folder's
    transformer with mean pooling (``keep_layers`` applies to it too).

    Args:
        teacher_or_path: the teacher, or its name/folder (not needed with ``base``).
        keep_layers: transformer layers to keep, e.g. ``[0, 3, 5]``.
        fresh_config: ``{}`` for bert-tiny, a dict of ``BertConfig`` settings, or a config.
        base: a model name/folder to start from instead of the teacher.
        dense: add ``Dense(dim -> dense)`` (before a Normalize, if there is one).
        normalize: ``True``/``False`` adds/removes a final Normalize; ``None`` keeps the
            teacher's for (a) and adds none for (b) and (c).
        seed: seeds every new random weight (the global RNG is left as it was).
        device: where to put the student; the teacher's device by default.
        pooling: a pooling mode to use instead of the one the student starts with (the
            teacher's for (a) and (b), mean for (c)).
        activation: the added Dense layer's activation (:class:`~workbench.models.Dense`'s
            default when ``None``).

    Example:
        >>> from workbench import load_model
        >>> teacher = load_model("all-MiniLM-L6-v2")
        >>> student = make_student(teacher, keep_layers=[0, 5], pooling="cls", dense=128)
        >>> student
        EmbeddingModel(
          Transformer(BertModel, layers=2, hidden=384, max_seq_length=256)
          Pooling(384, cls)
          Dense(384->128, Tanh)
          Normalize()
        )
    """
    if fresh_config is not None and (base is not None or keep_layers is not None):
        raise ValueError("fresh_config builds a new transformer: do not combine it with base= or keep_layers=")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if base is not None:
            student = build_model(base, keep_layers=list(keep_layers) if keep_layers is not None else None,
                                  device=device)
        else:
            if teacher_or_path is None:
                raise ValueError("make_student needs a teacher (or base=)")
            teacher = _as_model(teacher_or_path)
            device = device if device is not None else teacher.device
            if fresh_config is not None:
                config = _fresh_config(fresh_config, teacher.tokenizer, teacher.max_seq_length)
                pooling = next((m.modes for m in teacher.layers if isinstance(m, Pooling)), "mean")
                student = build_model(config, pooling=pooling, tokenizer=teacher.tokenizer,
                                      max_seq_length=teacher.max_seq_length, device=device)
            else:
                student = copy.deepcopy(teacher)  # own parameters: training it never moves the teacher
                if keep_layers is not None:
                    student.transformer.keep_layers(list(keep_layers))
        modules = list(student.layers)
        tail = [modules.pop()] if isinstance(modules[-1], Normalize) else []
        if pooling is not None:
            at = next(i for i, m in enumerate(modules) if isinstance(m, Pooling))
            if any(isinstance(m, Dense) for m in modules[at + 1:]):
                raise ValueError(f"pooling={pooling!r}: this student keeps the teacher's Dense layer after its pooling, "
                                 "which was trained on the teacher's pooling; give base= or fresh_config= instead")
            modules[at] = Pooling(modules[at].dim, pooling, include_prompt=modules[at].include_prompt)
        if dense is not None:
            extra = {"activation": activation} if activation is not None else {}
            modules.append(Dense(modules[-1].dim, dense, **extra))
        if normalize is True or (normalize is None and tail):
            tail = tail or [Normalize()]
        elif normalize is False:
            tail = []
        result = EmbeddingModel(modules + tail, prompts=student.prompts, default_prompt_name=student.default_prompt_name,
                                similarity_fn_name=student.similarity_fn_name)
    result.source = student.source
    return result.to(pick_device(device)).eval()


def _fresh_config(spec: dict[str, Any] | Any, tokenizer: Any, max_seq_length: int) -> Any:
    if hasattr(spec, "model_type") and hasattr(spec, "to_dict"):
        return spec
    from transformers import BertConfig

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    settings = {**BERT_TINY, "vocab_size": len(tokenizer), "pad_token_id": pad,
                "max_position_embeddings": max(512, int(max_seq_length))}
    settings.update(dict(spec))
    return BertConfig(**settings)


# ----- the entry point -------------------------------------------------------------------------
class CombinedEvaluator:
    """Several evaluators as one: their metric dicts merged, one primary metric.

    Args:
        *evaluators: callables ``encoder -> dict[str, float]`` (keys must not collide).
        primary: the primary metric key; the first evaluator's ``primary_metric`` by default.

    Example:
        >>> ev = CombinedEvaluator(lambda m: {"a_x": 1.0}, lambda m: {"b_y": 2.0}, primary="b_y")
        >>> ev(None), ev.primary_metric
        ({'a_x': 1.0, 'b_y': 2.0}, 'b_y')
    """

    def __init__(self, *evaluators: Callable[[Any], dict[str, float]], primary: str | None = None):
        if not evaluators:
            raise ValueError("CombinedEvaluator needs at least one evaluator")
        self.evaluators = evaluators
        primary = primary or getattr(evaluators[0], "primary_metric", None)
        if primary is None:
            raise ValueError("name the primary metric: primary=... (the first evaluator has no primary_metric)")
        self.primary_metric: str = primary

    def __call__(self, encoder: Any) -> dict[str, float]:
        merged: dict[str, float] = {}
        for ev in self.evaluators:
            metrics = ev(encoder)
            clash = sorted(merged.keys() & metrics.keys())
            if clash:
                raise ValueError(f"evaluators report the same metrics {clash}; give them different names")
            merged.update(metrics)
        if self.primary_metric not in merged:
            raise ValueError(f"primary metric {self.primary_metric!r} is not among {sorted(merged)}")
        return merged

    def __repr__(self) -> str:
        return f"CombinedEvaluator({', '.join(map(repr, self.evaluators))}, primary={self.primary_metric!r})"


# Texts the teacher encodes between two progress events (and per resumable cache chunk).
TEACHER_CHUNK = 1024


def _preparing(callbacks: Sequence[Callable[[Event], None]], what: str) -> Callable[[int, int, float], None] | None:
    """An ``on_progress`` for :func:`teacher_embeddings` that sends ``callbacks`` a
    :class:`~workbench.training.events.Preparing` event each time (``None`` without callbacks)."""
    if not callbacks:
        return None
    from workbench.training.events import Preparing

    def on_progress(done: int, total: int, elapsed_s: float) -> None:
        event = Preparing(what=what, done=done, total=total, elapsed_s=elapsed_s)
        for cb in callbacks:
            cb(event)

    return on_progress


def distill(
    teacher: EmbeddingModel | str | os.PathLike[str],
    student: EmbeddingModel,
    sentences: Sequence[str] | Any,
    config: TrainConfig,
    eval_sentences: Sequence[str] | Any | None = None,
    sts_dev: Any = None,
    run_dir: str | os.PathLike[str] | None = None,
    callbacks: Sequence[Callable[[Event], None]] = (),
    cache_dir: str | os.PathLike[str] | None = None,
    pca_sentences: int = PCA_SENTENCES,
    batch_size: int = 64,
    run_info: dict[str, Any] | None = None,
    card: Callable[..., str] | None = None,
    resume: bool = False,
    stop_signal: threading.Event | None = None,
    loss: nn.Module | None = None,
    allow_changes: bool = False,
) -> tuple[EmbeddingModel, Trainer]:
    """Train ``student`` to reproduce the (PCA-reduced, if narrower) teacher's embeddings.

    Teacher embeddings of the training and held-out sentences are computed once (cached). When
    the student is narrower, PCA is fitted on a seeded sample of up to ``pca_sentences`` of the
    training embeddings and the labels are those embeddings times the components, which is
    what the reduced teacher outputs. Progress comes through ``callbacks`` as training events.

    Args:
        teacher: the teacher model (or a name/folder).
        student: the model to train (changed in place); see :func:`make_student`.
        sentences: training texts (a list, or a dataset with a ``sentence`` column).
        config: the hyper-parameters (seed A: lr 1e-4, batch 64, 1 epoch).
        eval_sentences: held-out texts for ``mse_negative_mse``.
        sts_dev: STS-B dev pairs (``sentence1, sentence2, score``) for ``sts-dev_spearman_cosine``,
            the primary metric when given.
        run_dir: the run folder (config, metrics, checkpoints, final model); ``None`` writes nothing.
        callbacks: functions receiving every training event.
        cache_dir: cache for teacher embeddings (:func:`default_cache_dir` by default).
        pca_sentences: at most this many training sentences to fit the PCA on.
        batch_size: texts per teacher forward pass.
        run_info: the caller's facts for ``config.json``; the distillation's own (teacher,
            student, PCA, data sizes) are added under ``"distillation"``.
        card, resume, stop_signal, allow_changes: passed to the :class:`~workbench.training.Trainer`.
        loss: the loss module, built on ``student`` and taking the teacher embeddings as labels
            (``MSELoss(student)`` by default).

    Returns:
        ``(student, trainer)``: the trained student (best weights when ``config.keep_best``) and
        the trainer, whose ``best_value``/``best_step`` tell how it went.
    """
    model = _as_model(teacher)
    if student.dim > model.dim:
        raise ValueError(f"the student's embedding ({student.dim}) is wider than the teacher's ({model.dim}); "
                         f"MSE distillation needs student dim <= teacher dim: add or shrink a Dense layer")
    texts = _texts(sentences)
    held = _texts(eval_sentences) if eval_sentences is not None else []
    from accelerate import PartialState

    # Under torchrun / accelerate launch every process gets here: the main one computes (and
    # caches) the teacher embeddings while the others wait, then they read the finished cache.
    # (cpu= must agree with the Accelerator the Trainer makes.)
    with PartialState(cpu=student.device.type == "cpu").main_process_first():
        labels = teacher_embeddings(model, texts, cache_dir, batch_size, chunk_size=TEACHER_CHUNK,
                                    on_progress=_preparing(callbacks, "the teacher encodes the training sentences"))
        held_labels = teacher_embeddings(model, held, cache_dir, batch_size, chunk_size=TEACHER_CHUNK,
                                         on_progress=_preparing(callbacks, "the teacher encodes the held-out sentences"),
                                         ) if held else None  # (m, teacher_dim)
    pca_info = None
    if student.dim < model.dim:
        k = min(pca_sentences, len(texts))
        rows = np.sort(np.random.default_rng(config.seed).choice(len(texts), size=k, replace=False))
        components, ratio = fit_pca(labels[rows], student.dim)  # (student_dim, teacher_dim)
        model = append_pca(model, components)
        labels = labels @ components.T  # (n, student_dim): what the reduced teacher outputs
        held_labels = held_labels @ components.T if held_labels is not None else None
        pca_info = {"n_components": student.dim, "fit_sentences": k,
                    "explained_variance": float(ratio.sum()), "mean_subtracted": False}

    evaluators = []
    if sts_dev is not None:
        evaluators.append(STSEvaluator.from_dataset(sts_dev, name="sts-dev"))
    if held_labels is not None:
        evaluators.append(MSEEvaluator(held, teacher_embeddings=held_labels, name="mse"))
    evaluator = CombinedEvaluator(*evaluators) if evaluators else None
    facts = {
        "teacher": {"source": model.source, "dim": model.dim, "architecture": repr(model)},
        "student": {"source": student.source, "dim": student.dim, "architecture": repr(student)},
        "pca": pca_info,
        "data": {"train_sentences": len(texts), "eval_sentences": len(held),
                 "sts_dev_pairs": len(sts_dev) if sts_dev is not None else 0},
    }
    if loss is None:
        loss = MSELoss(student)
    elif getattr(loss, "model", None) is not student:
        raise ValueError("the distillation loss must be built on the student (loss.model is student)")
    trainer = Trainer(student, loss, config, {"sentence": texts, "label": labels}, evaluator, run_dir,
                      callbacks, run_info={**(run_info or {}), "distillation": facts}, card=card, stop_signal=stop_signal)
    return trainer.fit(resume=resume, allow_changes=allow_changes), trainer


# ----- helpers ---------------------------------------------------------------------------------
def _as_model(teacher: EmbeddingModel | str | os.PathLike[str]) -> EmbeddingModel:
    if isinstance(teacher, nn.Module):
        return teacher  # type: ignore[return-value]
    return load_model(teacher)


def _texts(data: Sequence[str] | Any) -> list[str]:
    """A list of texts from a list, or from a dataset/dict with a ``sentence`` column."""
    if isinstance(data, str):
        raise TypeError("expected a list of sentences, got one string")
    if hasattr(data, "column_names") or isinstance(data, dict):
        names = list(data.column_names if hasattr(data, "column_names") else data)
        if "sentence" not in names and len(names) != 1:
            raise ValueError(f"no 'sentence' column among {names}")
        data = data["sentence" if "sentence" in names else names[0]]
    texts = list(data)
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"sentence {i} is {type(text).__name__}, not text")
    return texts
