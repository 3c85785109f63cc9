"""Similarity between embeddings: full matrices, row-wise scores, semantic search, paraphrase pairs.

Four similarity functions, all oriented so that *higher means more similar*:

=============  ================================  =========================
name           score                             aliases
=============  ================================  =========================
``cosine``     ``a·b / (‖a‖ ‖b‖)``               ``cos_sim``
``dot``        ``a·b``                           ``dot_product``
``euclidean``  ``−‖a − b‖₂`` (negated distance)
``manhattan``  ``−Σ|a − b|`` (negated distance)
=============  ================================  =========================

Names are case-insensitive, and sentence-transformers' ``SimilarityFunction`` members are
accepted too. Every function takes numpy arrays or torch tensors and returns the same kind
(a tensor stays on its device). Results are float32, or float64 when an input is float64, and
never carry a gradient: these are measuring tools, not losses.

:func:`similarity_matrix` and :func:`pairwise_similarity` accumulate in float64, so they agree
with scipy to about 1e-7. :func:`top_k` and :func:`paraphrase_pairs` rank large collections and
compute cosine and dot in the input precision (float32 matmuls run several times faster than
float64 ones on a CPU; rankings are unaffected beyond ~1e-6). Everything that builds an
``n × m`` block does so a slice of rows at a time, so memory stays near the size of the output.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

SIMILARITY_FUNCTIONS: tuple[str, ...] = ("cosine", "dot", "euclidean", "manhattan")
_ALIASES: dict[str, str] = {"cos_sim": "cosine", "dot_product": "dot", "dot_score": "dot"}

# Norms below this are clamped before dividing, as torch.nn.functional.normalize does: a zero
# vector then has cosine 0 with everything instead of NaN.
_EPS = 1e-12

# How many scores one block may hold (4M: 32 MB in float64). Blocks are what bound memory.
_BLOCK_ELEMENTS = 1 << 22

ArrayLike = np.ndarray | torch.Tensor


def canonical_fn_name(fn: Any) -> str:
    """Resolve a similarity function name to one of :data:`SIMILARITY_FUNCTIONS`.

    Args:
        fn: ``"cosine"``, ``"dot"``, ``"euclidean"`` or ``"manhattan"`` in any case, one of the
            aliases ``"cos_sim"``, ``"dot_product"``, ``"dot_score"``, or an enum member whose
            value is one of those (sentence-transformers' ``SimilarityFunction``).

    Returns:
        The canonical lower-case name.

    Raises:
        ValueError: for anything else; the message lists the valid names.

    Example:
        >>> canonical_fn_name("DOT_PRODUCT"), canonical_fn_name("Cosine")
        ('dot', 'cosine')
    """
    value = getattr(fn, "value", fn)  # an Enum member carries its name in .value
    if isinstance(value, str):
        key = value.strip().lower()
        key = key.removeprefix("similarityfunction.")  # str() of an enum member
        key = _ALIASES.get(key, key)
        if key in SIMILARITY_FUNCTIONS:
            return key
    valid = ", ".join(repr(n) for n in SIMILARITY_FUNCTIONS)
    aliases = ", ".join(repr(n) for n in _ALIASES)
    raise ValueError(f"unknown similarity function {fn!r}; expected one of {valid} (aliases: {aliases})")


def similarity_matrix(
    a: ArrayLike, b: ArrayLike | None = None, fn: Any = "cosine", *, chunk_size: int | None = None
) -> ArrayLike:
    """Similarity of every row of ``a`` with every row of ``b``.

    Args:
        a: embeddings of shape ``(n, dim)`` (a single ``(dim,)`` vector counts as one row).
        b: embeddings of shape ``(m, dim)``; ``None`` compares ``a`` with itself.
        fn: similarity function name (see the module docstring).
        chunk_size: rows of ``a`` scored per block; the default keeps each block near 4M
            scores. Only memory and speed depend on it, not the result.

    Returns:
        An ``(n, m)`` array, numpy or torch like the inputs.

    Raises:
        ValueError: unknown ``fn``, inputs that are not 1-D/2-D, or embedding dims that differ.

    Example:
        >>> similarity_matrix(np.array([[1.0, 0.0], [0.0, 2.0]], dtype=np.float32))
        array([[1., 0.],
               [0., 1.]], dtype=float32)
    """
    name = canonical_fn_name(fn)
    ta, tb, as_torch, device, out_dtype = _inputs(a, b, matrix=True)
    n, m = ta.shape[0], tb.shape[0]
    # float64 throughout: the euclidean block formula cancels badly in float32.
    ta = _prepare(ta.to(device=device, dtype=torch.float64), name)  # (n, dim)
    tb = ta if b is None else _prepare(tb.to(device=device, dtype=torch.float64), name)  # (m, dim)
    rows = _rows_per_block(m, chunk_size)
    out = torch.empty((n, m), dtype=out_dtype, device=device)
    for start in range(0, n, rows):
        out[start : start + rows] = _score_block(ta[start : start + rows], tb, name)  # (rows, m)
    return _like(out, as_torch)


def pairwise_similarity(a: ArrayLike, b: ArrayLike, fn: Any = "cosine") -> ArrayLike:
    """Row-wise similarity ``sim(a[i], b[i])``: the diagonal of :func:`similarity_matrix`.

    Args:
        a: embeddings of shape ``(n, dim)``.
        b: embeddings of shape ``(n, dim)``.
        fn: similarity function name (see the module docstring).

    Returns:
        An ``(n,)`` array, numpy or torch like the inputs.

    Raises:
        ValueError: unknown ``fn``, or ``a`` and ``b`` of different shapes.

    Example:
        >>> pairwise_similarity(np.array([[0.0, 3.0]]), np.array([[4.0, 0.0]]), fn="euclidean")
        array([-5.])
    """
    name = canonical_fn_name(fn)
    ta, tb, as_torch, device, out_dtype = _inputs(a, b, matrix=False)
    ta = ta.to(device=device, dtype=torch.float64)  # (n, dim)
    tb = tb.to(device=device, dtype=torch.float64)  # (n, dim)
    if name == "cosine":
        scores = (_prepare(ta, name) * _prepare(tb, name)).sum(dim=1).clamp(-1.0, 1.0)
    elif name == "dot":
        scores = (ta * tb).sum(dim=1)
    elif name == "euclidean":
        # The direct difference, not the norm expansion: no cancellation for near-equal rows.
        scores = -torch.linalg.vector_norm(ta - tb, dim=1)
    else:
        scores = -(ta - tb).abs().sum(dim=1)
    return _like(scores.to(out_dtype), as_torch)


def top_k(
    query_emb: ArrayLike,
    corpus_emb: ArrayLike,
    k: int = 10,
    fn: Any = "cosine",
    *,
    query_chunk_size: int = 1024,
    corpus_chunk_size: int = 8192,
) -> tuple[ArrayLike, ArrayLike]:
    """Semantic search: the ``k`` corpus rows most similar to each query row.

    The score matrix is never built whole: queries and corpus are cut into blocks and a running
    top-k is merged block by block, so a 50,000 × 50,000 search needs a few hundred MB.

    Args:
        query_emb: queries, shape ``(q, dim)`` (a single ``(dim,)`` vector counts as one row).
        corpus_emb: corpus, shape ``(c, dim)``.
        k: how many results per query; at most ``c`` are returned.
        fn: similarity function name (see the module docstring).
        query_chunk_size: query rows per block.
        corpus_chunk_size: corpus rows per block.

    Returns:
        ``(scores, indices)``, both of shape ``(q, min(k, c))``, best first; numpy or torch
        like the inputs, indices int64. Among exactly equal scores the order is unspecified.

    Raises:
        ValueError: unknown ``fn``, ``k < 1``, or embedding dims that differ.

    Example:
        >>> corpus = np.array([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
        >>> scores, idx = top_k(np.array([[0.0, 1.0]]), corpus, k=2)
        >>> idx.tolist(), scores.round(2).tolist()
        ([[2, 1]], [[1.0, 0.8]])
    """
    name = canonical_fn_name(fn)
    _check_positive(k=k, query_chunk_size=query_chunk_size, corpus_chunk_size=corpus_chunk_size)
    tq, tc, as_torch, device, out_dtype = _inputs(query_emb, corpus_emb, matrix=True)
    # A ranking has no right answer for NaN/inf rows (topk would put NaN first): refuse them.
    _require_finite(tc, "corpus_emb")
    _require_finite(tq, "query_emb")
    dtype = _search_dtype(name, out_dtype)
    tq = _prepare(tq.to(device=device, dtype=dtype), name)  # (q, dim)
    tc = _prepare(tc.to(device=device, dtype=dtype), name)  # (c, dim)
    scores, indices = _search(tq, tc, min(k, tc.shape[0]), name, False, query_chunk_size, corpus_chunk_size)
    return _like(scores.to(out_dtype), as_torch), _like(indices, as_torch)


def paraphrase_pairs(
    emb: ArrayLike,
    top_k: int = 10,
    fn: Any = "cosine",
    *,
    max_pairs: int | None = None,
    query_chunk_size: int = 1024,
    corpus_chunk_size: int = 8192,
) -> list[tuple[float, int, int]]:
    """The most similar pairs of distinct rows, as ``(score, i, j)`` with ``i < j``, best first.

    Each row's ``top_k`` nearest other rows are collected (blockwise, as in :func:`top_k`) and
    every pair found is kept once. When ``max_pairs <= top_k`` the result is exactly the
    ``max_pairs`` best pairs overall (up to ties): a pair among the best ``p`` overall has at
    most ``p - 1`` better partners on either side, so it is in both rows' top ``p``.

    Args:
        emb: embeddings of shape ``(n, dim)``.
        top_k: neighbours considered per row.
        fn: similarity function name (see the module docstring).
        max_pairs: keep only this many pairs; ``None`` keeps all that were found.
        query_chunk_size: rows per block on the query side.
        corpus_chunk_size: rows per block on the corpus side.

    Returns:
        A list of ``(score, i, j)`` tuples of Python numbers, sorted by score descending
        (ties by ``i`` then ``j``). Rows with identical embeddings still form a pair.

    Raises:
        ValueError: unknown ``fn``, ``top_k < 1`` or ``max_pairs < 0``.

    Example:
        >>> emb = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1]])
        >>> [(round(s, 3), i, j) for s, i, j in paraphrase_pairs(emb, top_k=1)]
        [(0.994, 0, 2), (0.11, 1, 2)]
    """
    name = canonical_fn_name(fn)
    _check_positive(top_k=top_k, query_chunk_size=query_chunk_size, corpus_chunk_size=corpus_chunk_size)
    if max_pairs is not None and max_pairs < 0:
        raise ValueError(f"max_pairs must be >= 0 or None, got {max_pairs}")
    te, _, _, device, out_dtype = _inputs(emb, None, matrix=True)
    _require_finite(te, "emb")
    n = te.shape[0]
    if n < 2:
        return []
    te = _prepare(te.to(device=device, dtype=_search_dtype(name, out_dtype)), name)  # (n, dim)
    k = min(top_k, n - 1)
    scores, indices = _search(te, te, k, name, True, query_chunk_size, corpus_chunk_size)  # (n, k)
    sc = scores.double().cpu().numpy().ravel()
    first = np.repeat(np.arange(n), k)
    second = indices.cpu().numpy().ravel()
    lo, hi = np.minimum(first, second), np.maximum(first, second)
    # A pair found from both ends appears twice (scores equal up to rounding): keep the higher.
    order = np.lexsort((-sc, hi, lo))
    lo, hi, sc = lo[order], hi[order], sc[order]
    keep = np.ones(len(sc), dtype=bool)
    keep[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
    lo, hi, sc = lo[keep], hi[keep], sc[keep]
    order = np.lexsort((hi, lo, -sc))[:max_pairs]
    return [(float(sc[t]), int(lo[t]), int(hi[t])) for t in order]


def _inputs(
    a: Any, b: Any, *, matrix: bool
) -> tuple[torch.Tensor, torch.Tensor, bool, torch.device, torch.dtype]:
    """Validate and convert inputs; decide the output kind, device and dtype.

    Returns:
        ``(a, b, as_torch, device, out_dtype)``; ``b`` is ``a`` when ``b`` is None.
    """
    tensors = [x for x in (a, b) if isinstance(x, torch.Tensor)]
    as_torch = bool(tensors)
    if len(tensors) == 2 and a.device != b.device:
        raise ValueError(f"a is on {a.device} and b on {b.device}; put them on one device")
    # A numpy input joins the tensor's device; two numpy inputs are scored on the CPU.
    device = tensors[0].device if tensors else torch.device("cpu")
    ta = _to_tensor(a, "a")
    tb = ta if b is None else _to_tensor(b, "b")
    if matrix and ta.shape[1] != tb.shape[1]:
        raise ValueError(
            f"embedding dims differ: a has shape {tuple(ta.shape)} and b has shape {tuple(tb.shape)}"
        )
    if not matrix and ta.shape != tb.shape:
        raise ValueError(
            f"row-wise similarity needs equal shapes: a has shape {tuple(ta.shape)} and b has shape {tuple(tb.shape)}"
        )
    out_dtype = torch.float64 if torch.float64 in (ta.dtype, tb.dtype) else torch.float32
    return ta, tb, as_torch, device, out_dtype


def _to_tensor(x: Any, label: str) -> torch.Tensor:
    """A 2-D tensor view of ``x`` (numpy array, tensor or nested list); no copy when possible."""
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        arr = np.asarray(x)
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_) or np.iscomplexobj(arr):
            raise TypeError(f"{label} must hold real numbers, got an array of dtype {arr.dtype}")
        # torch.from_numpy warns on read-only arrays and refuses negative strides (x[::-1]).
        if not arr.flags.writeable or any(stride < 0 for stride in arr.strides):
            arr = arr.copy()
        t = torch.from_numpy(arr)
    if t.is_complex():
        raise TypeError(f"{label} must hold real numbers, got a tensor of dtype {t.dtype}")
    if t.ndim == 1:
        t = t.unsqueeze(0)
    if t.ndim != 2:
        raise ValueError(f"{label} must have shape (n, dim), got shape {tuple(t.shape)}")
    return t


def _prepare(x: torch.Tensor, name: str) -> torch.Tensor:
    """Per-row preprocessing done once, not per block: unit-normalise rows for cosine."""
    if name != "cosine":
        return x
    norms = torch.linalg.vector_norm(x, dim=1, keepdim=True).clamp_min(_EPS)  # (n, 1)
    return x / norms


def _score_block(a: torch.Tensor, b: torch.Tensor, name: str) -> torch.Tensor:
    """Scores of a ``(p, dim)`` block against ``(m, dim)`` rows, prepared by :func:`_prepare`."""
    if name == "cosine":
        return (a @ b.T).clamp_(-1.0, 1.0)  # rounding can step just past ±1
    if name == "dot":
        return a @ b.T
    if name == "euclidean":
        # ‖a−b‖² = ‖a‖² + ‖b‖² − 2a·b as one matmul; clamp the tiny negatives that rounding leaves.
        sq = (a * a).sum(dim=1)[:, None] + (b * b).sum(dim=1)[None, :] - 2.0 * (a @ b.T)  # (p, m)
        return sq.clamp_min_(0.0).sqrt_().neg_()
    # cdist with p=1 loops over pairs without materialising the (p, m, dim) differences.
    return torch.cdist(a, b, p=1.0).neg_()


def _search(
    queries: torch.Tensor,
    corpus: torch.Tensor,
    k: int,
    name: str,
    exclude_self: bool,
    query_chunk_size: int,
    corpus_chunk_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Blockwise top-k of ``queries @ corpus``; with ``exclude_self``, row i never returns i."""
    q = queries.shape[0]
    scores = torch.empty((q, k), dtype=queries.dtype, device=queries.device)
    indices = torch.empty((q, k), dtype=torch.int64, device=queries.device)
    if k == 0 or q == 0:
        return scores, indices
    for qs in range(0, q, query_chunk_size):
        block_q = queries[qs : qs + query_chunk_size]  # (bq, dim)
        best_s: torch.Tensor | None = None
        best_i: torch.Tensor | None = None
        for cs in range(0, corpus.shape[0], corpus_chunk_size):
            s = _score_block(block_q, corpus[cs : cs + corpus_chunk_size], name)  # (bq, bc)
            if exclude_self:
                # Query row r is corpus row qs + r: blank it where it falls inside this block.
                lo, hi = max(0, cs - qs), min(s.shape[0], cs + s.shape[1] - qs)
                if lo < hi:
                    rows = torch.arange(lo, hi, device=s.device)
                    s[rows, rows + (qs - cs)] = float("-inf")
            bs, bi = s.topk(min(k, s.shape[1]), dim=1)  # (bq, ≤k)
            bi += cs
            if best_s is None or best_i is None:
                best_s, best_i = bs, bi
            else:
                merged_s = torch.cat([best_s, bs], dim=1)  # (bq, ≤2k)
                merged_i = torch.cat([best_i, bi], dim=1)
                best_s, pos = merged_s.topk(min(k, merged_s.shape[1]), dim=1)
                best_i = merged_i.gather(1, pos)
        assert best_s is not None and best_i is not None
        scores[qs : qs + query_chunk_size] = best_s
        indices[qs : qs + query_chunk_size] = best_i
    return scores, indices


def _search_dtype(name: str, out_dtype: torch.dtype) -> torch.dtype:
    # Distances need float64 (the euclidean expansion cancels; cdist costs the same either way);
    # cosine and dot rank fine in float32, whose matmul is several times faster.
    return torch.float64 if name in ("euclidean", "manhattan") else out_dtype


def _rows_per_block(m: int, chunk_size: int | None) -> int:
    if chunk_size is not None:
        _check_positive(chunk_size=chunk_size)
        return chunk_size
    return max(1, _BLOCK_ELEMENTS // max(m, 1))


def _check_positive(**values: int) -> None:
    for label, value in values.items():
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{label} must be a positive integer, got {value!r}")


def _like(t: torch.Tensor, as_torch: bool) -> ArrayLike:
    return t if as_torch else t.cpu().numpy()


def _require_finite(t: torch.Tensor, name: str) -> None:
    bad = ~torch.isfinite(t).all(dim=1)
    if bool(bad.any()):
        row = int(bad.nonzero()[0][0])
        raise ValueError(f"{name} has a non-finite value (NaN or inf) in row {row}; a ranking needs finite embeddings")


# ----- quantized embeddings ------------------------------------------------------------------------
#: The precisions :func:`quantize_embeddings` knows, widest first.
PRECISIONS: tuple[str, ...] = ("float32", "float16", "int8", "uint8", "binary", "ubinary")


def quantize_embeddings(
    emb: ArrayLike,
    precision: str,
    calibration_embeddings: ArrayLike | None = None,
    ranges: np.ndarray | None = None,
) -> np.ndarray:
    """Embeddings stored in a smaller type, as sentence-transformers' ``quantize_embeddings`` stores them.

    * ``float32``, ``float16``: a cast (sentence-transformers 6.2 has no ``float16``; here it is
      the plain numpy cast).
    * ``int8``, ``uint8``: each dimension's range ``[lo, hi]`` is cut into 255 equal steps and a
      value becomes its step number ``floor((x - lo) / step)``, clipped to 0..255; ``int8``
      subtracts 128. The ranges come from ``ranges`` (shape ``(2, dim)``: minima, maxima), else
      the per-dimension min/max of ``calibration_embeddings``, else of ``emb`` itself. Ranges are
      used in float32 and a constant dimension gets step 1.
    * ``ubinary``: one bit per dimension (``x > 0``), 8 per byte (``np.packbits``, the last byte
      zero-padded): ``ceil(dim / 8)`` uint8 values. ``binary``: the same bytes minus 128, as int8.

    Args:
        emb: float embeddings, shape ``(n, dim)`` or ``(dim,)``; numpy or torch.
        precision: one of :data:`PRECISIONS`.
        calibration_embeddings: ``(m, dim)`` embeddings whose ranges int8/uint8 use.
        ranges: ``(2, dim)`` per-dimension minima and maxima for int8/uint8 (wins over calibration).

    Returns:
        A numpy array: float32/float16 shaped like ``emb``; int8/uint8 shaped like ``emb``;
        binary (int8) / ubinary (uint8) with ``ceil(dim / 8)`` columns.

    Raises:
        ValueError: an unknown precision, integer input, or int8/uint8 ranges that would have to
            come from a single embedding.

    Example:
        >>> emb = np.array([[-1.0, 0.5, 2.0], [1.0, -0.5, 0.0]], dtype=np.float32)
        >>> quantize_embeddings(emb, "uint8").tolist()  # a maximum can round down to step 254, as in sentence-transformers
        [[0, 254, 254], [254, 0, 0]]
        >>> quantize_embeddings(emb, "ubinary").tolist()  # bits 011 and 100, padded to a byte
        [[96], [128]]
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    x = _as_numpy(emb, "emb")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"emb must hold floats to quantize, got dtype {x.dtype}")
    if precision in ("float32", "float16"):
        return x.astype(precision)
    if precision in ("binary", "ubinary"):
        packed = np.packbits(x > 0, axis=-1)  # (n, ceil(dim / 8)) uint8
        return packed if precision == "ubinary" else (packed.astype(np.int16) - 128).astype(np.int8)
    if ranges is None:
        ranges = quantization_ranges(x if calibration_embeddings is None else calibration_embeddings)
    ranges = np.asarray(ranges).astype(np.float32, copy=False)
    if ranges.ndim != 2 or ranges.shape[0] != 2 or ranges.shape[1] != x.shape[-1]:
        raise ValueError(f"ranges must have shape (2, {x.shape[-1]}) (minima, maxima), got {ranges.shape}")
    lo = ranges[0]
    step = (ranges[1] - lo) / 255  # float32, as sentence-transformers computes it
    step = np.where(step == 0, 1, step)
    codes = np.clip(np.floor((x - lo) / step), 0, 255)  # in x's float type
    return codes.astype(np.uint8) if precision == "uint8" else (codes - 128).astype(np.int8)


def quantization_ranges(calibration_embeddings: ArrayLike) -> np.ndarray:
    """Per-dimension minima and maxima, shape ``(2, dim)``: the ``ranges`` int8/uint8 quantization uses.

    Raises:
        ValueError: fewer than 2 embeddings (one vector has no spread to cut into steps).

    Example:
        >>> quantization_ranges(np.array([[0.0, 1.0], [2.0, -1.0]])).tolist()
        [[0.0, -1.0], [2.0, 1.0]]
    """
    cal = _as_numpy(calibration_embeddings, "calibration_embeddings")
    if cal.ndim != 2 or cal.shape[0] < 2:
        raise ValueError(f"int8/uint8 ranges need at least 2 embeddings of shape (n, dim), got shape {cal.shape}; "
                         "pass ranges= or calibration_embeddings= from a representative set")
    return np.vstack((cal.min(axis=0), cal.max(axis=0)))


def bytes_per_vector(dim: int, precision: str) -> int:
    """Bytes one ``dim``-dimensional vector takes at ``precision``.

    Example:
        >>> [bytes_per_vector(384, p) for p in PRECISIONS]
        [1536, 768, 384, 384, 48, 48]
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    _check_positive(dim=dim)
    if precision in ("binary", "ubinary"):
        return (dim + 7) // 8
    return dim * {"float32": 4, "float16": 2, "int8": 1, "uint8": 1}[precision]


def quantized_similarity(a: np.ndarray, b: np.ndarray | None = None, precision: str = "float32", *,
                         pairwise: bool = False) -> np.ndarray:
    """Similarity of quantized embeddings, higher meaning more similar, in float64.

    * float32/float16: cosine.
    * int8/uint8: cosine of the signed codes (uint8 codes shifted by -128, which makes them
      exactly the int8 codes): what an int8 vector index scores, needing no ranges at query time.
    * binary/ubinary: the fraction of bits that agree, ``1 - hamming / bits`` with
      ``bits = 8 * bytes`` (the zero padding agrees in every pair, so rankings are those of the
      Hamming distance).

    Args:
        a: ``(n, k)`` quantized rows from :func:`quantize_embeddings`.
        b: ``(m, k)`` rows of the same precision; ``None`` compares ``a`` with itself.
        precision: the precision both were quantized to.
        pairwise: score row ``i`` of ``a`` with row ``i`` of ``b`` only (shape ``(n,)``)
            instead of the full ``(n, m)`` matrix.

    Example:
        >>> bits = quantize_embeddings(np.array([[1.0, -1.0, 1.0], [1.0, 1.0, 1.0]]), "ubinary")
        >>> quantized_similarity(bits, precision="ubinary").tolist()  # 3 real bits + 5 padding bits
        [[1.0, 0.875], [0.875, 1.0]]
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
    b = a if b is None else b
    if precision in ("binary", "ubinary"):
        # ±1 per bit; float32 sums of ±1 are exact up to 2^24 bits, and its matmul is twice as fast.
        ua, ub = (np.unpackbits(_as_ubinary(x), axis=-1).astype(np.float32) * 2 - 1 for x in (a, b))
        bits = ua.shape[-1]
        agree = (ua * ub).sum(axis=-1) if pairwise else ua @ ub.T  # = bits - 2 * hamming
        return (agree.astype(np.float64) + bits) / (2 * bits)
    shift = 128 if precision == "uint8" else 0
    fa, fb = (np.atleast_2d(np.asarray(x, dtype=np.float64)) - shift for x in (a, b))
    fa, fb = (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), _EPS) for x in (fa, fb))  # unit rows
    scores = (fa * fb).sum(axis=1) if pairwise else fa @ fb.T  # one BLAS call: faster than the blocked torch path
    return np.clip(scores, -1.0, 1.0)


def _as_ubinary(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype == np.int8:  # "binary": the packed bytes minus 128
        return (x.astype(np.int16) + 128).astype(np.uint8)
    if x.dtype != np.uint8:
        raise ValueError(f"binary embeddings are int8 (binary) or uint8 (ubinary) bytes, got dtype {x.dtype}")
    return x


def _as_numpy(x: Any, label: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu()
        return (t.float() if t.dtype == torch.bfloat16 else t).numpy()
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.number) and arr.dtype != np.bool_:
        raise ValueError(f"{label} must hold numbers, got an array of dtype {arr.dtype}")
    return arr
