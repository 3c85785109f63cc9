"""Turning texts into embeddings: batching, device choice, and adapting any encoder.

Every part of the workbench that needs embeddings (evaluators, widgets, benchmarks) accepts
an *encoder*: a workbench ``EmbeddingModel``, a ``sentence_transformers.SentenceTransformer``
or a plain function ``texts -> array``. :func:`as_encode_fn` turns any of them into one
callable.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence, ValuesView
from collections.abc import Set as AbstractSet
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

EncodeFn = Callable[[Sequence[str]], np.ndarray]

# From this many texts an encoding through encode_with_progress shows a progress bar: fewer take
# a few seconds at most on a laptop CPU (the workshop map's 900 sentences take 5-10 s there).
PROGRESS_ABOVE = 500
_PROGRESS: ContextVar[bool | None] = ContextVar("workbench_progress", default=None)


@contextmanager
def progress_bars(show: bool | None) -> Iterator[None]:
    """Within the block (and this thread), :func:`encode_with_progress` shows its bar (``True``),
    never does (``False``: the trainer's evaluations, which the live curves report), or decides by
    size (``None``)."""
    token = _PROGRESS.set(show)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


def encode_with_progress(
    encode_fn: EncodeFn, texts: Sequence[str], desc: str = "encode", progress: bool | None = None, chunk: int = 512,
) -> np.ndarray:
    """``encode_fn(texts)``, in chunks of ``chunk`` texts under a tqdm bar when it takes a while.

    Args:
        encode_fn: a function from :func:`as_encode_fn`.
        texts: the texts.
        desc: the bar's label.
        progress: show the bar; ``None``: as :func:`progress_bars` says, else from
            :data:`PROGRESS_ABOVE` texts on.
        chunk: texts per call of ``encode_fn`` while the bar is shown.

    Example:
        >>> fn = as_encode_fn(lambda texts: [[float(len(t))] for t in texts])
        >>> encode_with_progress(fn, ["a", "bb", "ccc"], progress=True, chunk=2).tolist()
        [[1.0], [2.0], [3.0]]
    """
    texts = list(texts)
    show = progress if progress is not None else _PROGRESS.get()
    if show is None:
        show = len(texts) >= PROGRESS_ABOVE
    if not show or not texts:
        return encode_fn(texts)
    from tqdm.auto import tqdm

    parts = []
    with tqdm(total=len(texts), desc=desc, unit="text", leave=False) as bar:
        for start in range(0, len(texts), chunk):
            parts.append(encode_fn(texts[start:start + chunk]))
            bar.update(len(parts[-1]))
    return np.concatenate(parts)


def as_encode_fn(encoder: Any, **encode_kwargs: Any) -> EncodeFn:
    """Adapt an encoder to a function ``list[str] -> float32 array of shape (n, dim)``.

    Args:
        encoder: an object with an ``encode(texts, **kwargs)`` method (a workbench model or a
            SentenceTransformer) or a plain callable ``texts -> array-like``.
        **encode_kwargs: passed to ``encoder.encode`` (e.g. ``batch_size``); ignored for
            plain callables.

    Returns:
        A function that encodes a list of texts into a 2-D float32 numpy array.

    Example:
        >>> fn = as_encode_fn(lambda texts: [[float(len(t))] for t in texts])
        >>> fn(["a", "abc"]).tolist()
        [[1.0], [3.0]]
    """
    if hasattr(encoder, "encode") and callable(encoder.encode):
        def call(texts: Sequence[str]) -> np.ndarray:
            return encoder.encode(list(texts), **encode_kwargs)
    elif callable(encoder):
        def call(texts: Sequence[str]) -> np.ndarray:
            return encoder(list(texts))
    else:
        raise TypeError(
            f"expected an encoder (a model with .encode or a function texts -> array), got {type(encoder).__name__}"
        )

    def encode_fn(texts: Sequence[str]) -> np.ndarray:
        out = call(texts)
        if hasattr(out, "detach"):  # a torch tensor
            out = out.detach().float().cpu().numpy()
        arr = np.asarray(out, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[0] != len(texts):
            raise ValueError(
                f"encoder returned an array of shape {arr.shape} for {len(texts)} texts; expected ({len(texts)}, dim)"
            )
        return arr

    return encode_fn


def _check_texts(texts: Any) -> tuple[list[str], bool]:
    """Validate input: a string or a sequence of strings. Returns (texts, was_single)."""
    if isinstance(texts, str):
        return [texts], True
    return as_text_list(texts), False


def check_ordered(items: Any, name: str = "texts", owner: str = "encode") -> None:
    """Refuse a collection whose order the caller cannot know, or that is not a collection at all.

    Row ``i`` of an encoding (a search hit's index, a projector point) means "the ``i``-th item";
    a set, a dict or one of its views has no order the caller chose, so those rows would match
    nothing the caller can index. A generator is refused too: it has no length, and once consumed
    it cannot be looked back into.

    Args:
        items: what the caller passed.
        name: the argument's name, for the message.
        owner: who takes it (``encode``, ``SemanticSearch``...), for the message.

    Raises:
        TypeError: ``items`` is one string or bytes, unordered, a mapping, or has no length.

    Example:
        >>> check_ordered(["b", "a"])
        >>> check_ordered({"b", "a"})
        Traceback (most recent call last):
        ...
        TypeError: encode takes an ordered list of strings as texts, got a set: its order is arbitrary, so the rows would match nothing you can index; pass a list (sorted(texts) if the order does not matter)
    """
    kind = type(items).__name__
    if isinstance(items, (AbstractSet, ValuesView)):
        raise TypeError(
            f"{owner} takes an ordered list of strings as {name}, got a {kind}: its order is arbitrary, so the "
            f"rows would match nothing you can index; pass a list (sorted({name}) if the order does not matter)"
        )
    if isinstance(items, Mapping):
        raise TypeError(
            f"{owner} takes a list of strings as {name}, got a {kind}; pass list({name}.values()) or "
            f"list({name}) to say which"
        )
    if isinstance(items, str):
        raise TypeError(f"{owner} takes a list of strings as {name}, got one str; pass [{name}]")
    if isinstance(items, (bytes, bytearray)):
        raise TypeError(f"{owner} takes a list of strings as {name}, got {kind}; decode it first")
    if not hasattr(items, "__len__") or not hasattr(items, "__iter__"):
        raise TypeError(
            f"{owner} takes a list of strings as {name}, got {kind}"
            + ("; pass list(...) of it" if hasattr(items, "__next__") else "")
        )


def as_text_list(texts: Any, name: str = "texts", owner: str = "encode") -> list[str]:
    """The strings of an ordered collection, as a new list; anything else refused, naming the item.

    Args:
        texts: a list, a tuple or another ordered sequence of strings.
        name: the argument's name in messages (``corpus[3] is NoneType``).
        owner: who takes it, in messages.

    Returns:
        ``list(texts)``, in the caller's order.

    Raises:
        TypeError: ``texts`` is not an ordered collection (see :func:`check_ordered`), or an item
            is not a string (``str(None)`` would be encoded as the text ``"None"``).
        ValueError: an item is not valid Unicode (a lone surrogate).

    Example:
        >>> as_text_list(("a", "b"))
        ['a', 'b']
        >>> as_text_list(["a", None], "corpus", "SemanticSearch")
        Traceback (most recent call last):
        ...
        TypeError: corpus[1] is NoneType (None); SemanticSearch takes strings only
    """
    check_ordered(texts, name, owner)
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(f"{name}[{i}] is {type(text).__name__} ({text!r:.60}); {owner} takes strings only")
        if not text.isascii():
            check_unicode(text, f"{name}[{i}]")
    return out


def check_unicode(text: str, label: str) -> None:
    """A lone surrogate (bytes decoded with errors='surrogateescape') would reach the tokenizer as an
    unexplained TypeError; name it instead."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(
            f"{label} is not valid Unicode: a lone surrogate {text[err.start]!r} at position {err.start} "
            f"({text[:40]!r}...); it usually comes from bytes decoded with errors='surrogateescape'"
        ) from None


def pick_device(device: str | torch.device | None = None) -> torch.device:
    """The requested device, or the best present: cuda, then mps, then cpu.

    Example:
        >>> pick_device("cpu")
        device(type='cpu')
    """
    import torch

    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def _consecutive_ranges(n: int, size: int) -> list[range]:
    """``range(0, n)`` cut into consecutive pieces of ``size`` indices (the last may be shorter)."""
    return [range(start, min(start + size, n)) for start in range(0, n, size)]


def encode_texts(
    model: Any,
    texts: str | Sequence[str],
    batch_size: int = 32,
    normalize: bool = False,
    device: Any = None,
    progress: bool | None = None,
    output: str = "numpy",
    precision: str = "fp32",
    prompt: str | None = None,
    chunk_size: int = 16384,
) -> Any:
    """The encode loop behind ``EmbeddingModel.encode`` (see there for the arguments).

    Texts are tokenized chunk by chunk (bounded memory for long corpora), sorted by token
    count inside a chunk so each batch pads little, run under ``torch.inference_mode``, and
    written back in input order. On a CUDA out-of-memory error the batch size is halved and the
    batch retried, with a warning.
    """
    import torch
    from tqdm.auto import tqdm

    items, single = _check_texts(texts)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if output not in ("numpy", "torch"):
        raise ValueError(f"output must be 'numpy' or 'torch', got {output!r}")
    if precision not in ("fp32", "fp16", "bf16"):
        raise ValueError(f"precision must be 'fp32', 'fp16' or 'bf16', got {precision!r}")
    if getattr(model, "is_static", False):  # numpy lookups on the CPU, wherever the table is kept (no move)
        out = _encode_static(model, items, prompt, normalize, show_progress=progress)
        out = out[0] if single else out
        return out if output == "numpy" else torch.from_numpy(out)
    dev = pick_device(device) if device is not None or model.device.type == "cpu" else model.device
    runtime = getattr(model, "backend", "torch")  # "onnx" or "openvino": a CPU runtime runs the transformer
    if runtime != "torch":
        if device is not None and dev.type != "cpu":
            what = "an ONNX-backed" if runtime == "onnx" else "an OpenVINO-backed"
            raise ValueError(f"{what} model encodes on the CPU; device={device!r} needs backend='torch'")
        dev = torch.device("cpu")
    if model.device != dev:
        model.to(dev)
    was_training = model.training
    model.eval()
    n, dim = len(items), model.dim
    result = torch.empty((n, dim), dtype=torch.float32)
    if n == 0:
        return result.numpy() if output == "numpy" else result

    transformer = model.transformer
    tok = transformer.tokenizer
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0
    input_names = [k for k in tok.model_input_names if k in ("input_ids", "attention_mask", "token_type_ids")]
    prompt_length = 0
    if prompt:
        items = [prompt + t for t in items]
        # Prompt tokens without the trailing special token: pooling may exclude them.
        prompt_length = len(transformer.tokenize([prompt], padding=False)["input_ids"][0]) - 1
    use_autocast = dev.type == "cuda" and precision != "fp32"
    amp_dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    if precision != "fp32" and dev.type != "cuda":
        warnings.warn(f"precision={precision!r} applies on a CUDA GPU only; encoding in fp32 on {dev.type}", stacklevel=3)
    show = progress if progress is not None else n >= 256 * batch_size  # only work that takes a while
    bar = tqdm(total=n, desc="encode", unit="text", disable=not show, leave=False)
    bs = batch_size
    # With an onnxruntime graph (or an OpenVINO model), torch runs only the small modules after it (pooling,
    # Dense, Normalize). The runtime's worker threads keep spinning between runs, so torch's own thread pool
    # would fight them for the cores: one torch thread made encoding 1.4x faster with onnxruntime (2 cores,
    # STS-B sentences, batch 32), and the OpenVINO student 1.7x (2,136-2,328 -> 3,944 sentences/s).
    torch_threads = torch.get_num_threads()
    if runtime != "torch":
        torch.set_num_threads(1)
    try:
        with torch.inference_mode():
            for chunk in _consecutive_ranges(n, chunk_size):
                enc = transformer.token_ids([items[i] for i in chunk])
                ids = enc["input_ids"]
                _warn_truncation(model, [items[chunk.start + j] for j, row in enumerate(ids)
                                         if len(row) >= transformer.max_seq_length])
                order = sorted(range(len(ids)), key=lambda j: -len(ids[j]))  # longest first: OOM shows up early
                pos = 0
                while pos < len(order):
                    batch = order[pos : pos + bs]
                    width = len(ids[batch[0]])
                    feats = {}
                    arr = np.full((len(batch), width), pad_id, dtype=np.int64)
                    mask = np.zeros((len(batch), width), dtype=np.int64)
                    types = np.zeros((len(batch), width), dtype=np.int64) if "token_type_ids" in input_names else None
                    for r, j in enumerate(batch):
                        row = ids[j]
                        arr[r, : len(row)] = row
                        mask[r, : len(row)] = 1
                        if types is not None and "token_type_ids" in enc:
                            types[r, : len(row)] = enc["token_type_ids"][j]
                    feats["input_ids"] = torch.from_numpy(arr).to(dev)
                    feats["attention_mask"] = torch.from_numpy(mask).to(dev)
                    if types is not None:
                        feats["token_type_ids"] = torch.from_numpy(types).to(dev)
                    if prompt_length:
                        feats["prompt_length"] = prompt_length
                    try:
                        with torch.autocast(dev.type, dtype=amp_dtype, enabled=use_autocast):
                            emb = model(feats)
                    except torch.cuda.OutOfMemoryError:
                        if bs == 1:
                            raise
                        bs = max(1, bs // 2)
                        torch.cuda.empty_cache()
                        warnings.warn(f"CUDA out of memory while encoding; retrying with batch_size={bs}", stacklevel=3)
                        continue
                    emb = emb.float()
                    if normalize:
                        emb = torch.nn.functional.normalize(emb, p=2, dim=1)
                    result[torch.tensor([chunk.start + j for j in batch])] = emb.cpu()
                    pos += len(batch)
                    bar.update(len(batch))
    finally:
        bar.close()
        if torch.get_num_threads() != torch_threads:
            torch.set_num_threads(torch_threads)
        if was_training:
            model.train()
    out = result[0] if single else result
    return out.numpy() if output == "numpy" else out


def _encode_static(model: Any, items: list[str], prompt: str | None, normalize: bool,
                   show_progress: bool | None, chunk: int = 8192) -> np.ndarray:
    """A static model's encode: numpy lookups and means per chunk, then any modules after the table (on the CPU)."""
    import torch
    from tqdm.auto import tqdm

    static = model.layers[0]
    rest = list(model.layers[1:])
    if prompt:
        items = [prompt + t for t in items]
    out = np.empty((len(items), model.dim), dtype=np.float32)
    show = show_progress if show_progress is not None else len(items) >= 200_000
    with tqdm(total=len(items), desc="encode", unit="text", disable=not show, leave=False) as bar:
        for rows in _consecutive_ranges(len(items), chunk):
            emb = static.encode_numpy(items[rows.start : rows.stop])
            if rest:
                with torch.inference_mode():
                    feats = {"sentence_embedding": torch.from_numpy(emb).to(static.embedding.weight.device)}
                    for module in rest:
                        was = module.training
                        module.eval()
                        feats = module(feats)
                        module.train(was)
                    emb = feats["sentence_embedding"].float().cpu().numpy()
            if normalize:
                emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
            out[rows.start : rows.stop] = emb
            bar.update(len(rows))
    return out


def _warn_truncation(model: Any, candidates: list[str]) -> None:
    """Warn once per model when texts are longer than ``max_seq_length`` (their ends are ignored)."""
    if not candidates or getattr(model, "_warned_truncation", False):
        return
    tok = model.transformer.tokenizer
    limit = model.transformer.max_seq_length
    # Rows exactly at the limit may fit; count only those that really were cut.
    longer = [t for t in candidates if len(tok(t, truncation=False)["input_ids"]) > limit]
    if longer:
        model._warned_truncation = True
        warnings.warn(
            f"{len(longer)} text(s) are longer than max_seq_length={limit} tokens and were truncated "
            f"(e.g. {longer[0][:60]!r}...); raise model.max_seq_length to keep more. This is said once per model.",
            UserWarning, stacklevel=4,
        )
