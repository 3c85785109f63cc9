"""Why are two sentences similar? The cosine of a pair split into token × token terms.

**Exact** (a mean-pooled model with no Dense layer): the sentence vector is a weighted sum of the
token vectors the pooling averages, ``ā = Σ_i c_i t_i`` (``c_i = 1/n`` for mean pooling, over the
tokens the attention mask keeps), so

``cos(a, b) = ā · b̄ / (‖ā‖ ‖b̄‖) = Σ_i Σ_j c_i d_j (t_i · u_j) / (‖ā‖ ‖b̄‖)``

and the ``n × m`` matrix of these terms sums to the pair's cosine up to float rounding. A
Normalize after the pooling only rescales ``ā``: the cosine, and so the matrix, is unchanged.
``mean_sqrt_len_tokens`` and ``weightedmean`` pooling are weighted sums too and are exact.

**Approximate** (CLS, max or last-token pooling, a Dense head, a Normalize before a Dense):
integrated gradients of the head ``h`` (everything after the transformer, up to a last
Normalize) with respect to its token-vector inputs, on the straight path from all-zero token
vectors (``α·T``, ``α`` from 0 to 1, Gauss–Legendre nodes). Token ``i`` of sentence a gets a
*vector* ``J_i = Σ_k ∫ ∂h/∂t_ik t_ik dα`` (one number per output dimension) with
``Σ_i J_i ≈ h(a) − h(0)``; the matrix is the bilinear form ``J_i · K_j / (‖h(a)‖ ‖h(b)‖)``.
What the all-zero reference already explains (``h(0)`` is ``tanh(bias)`` for a Dense layer) is
reported apart as ``baseline``, so ``matrix.sum() + baseline = cosine`` up to the integration
error, reported as ``completeness_error`` (it falls with more ``steps``).

Example:
    >>> from workbench import load_model
    >>> model = load_model("all-MiniLM-L6-v2", device="cpu")
    >>> r = token_similarity(model, "a dog bites a man", "a man bites a dog")
    >>> r.method, r.tokens_a[:3], r.matrix.shape
    ('exact', ('[CLS]', 'a', 'dog'), (7, 7))
    >>> bool(abs(r.matrix.sum() - r.cosine) < 1e-5)
    True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

METHODS = ("auto", "exact", "integrated-gradients")
# Poolings whose sentence vector is a fixed weighted sum of the token vectors (the exact case).
_LINEAR_POOLINGS = ("mean", "mean_sqrt_len_tokens", "weightedmean")


@dataclass(frozen=True, eq=False)
class TokenSimilarity:
    """A pair's cosine split into token-pair terms (see the module docstring).

    Attributes:
        text_a, text_b: the two texts.
        tokens_a, tokens_b: the tokens the model saw (after truncation), or words once joined.
        matrix: ``(len(tokens_a), len(tokens_b))`` float64 terms; ``matrix.sum() + hidden +
            baseline`` equals ``cosine`` up to ``completeness_error``.
        cosine: the model's cosine of the two sentence embeddings (from its own forward pass).
        method: ``"exact"`` or ``"integrated-gradients"``.
        special_a, special_b: which tokens are special ([CLS], [SEP]).
        word_a, word_b: the word index of each token (``None`` for a special token).
        spans_a, spans_b: each token's characters in its text (``None`` when the tokenizer has no offsets).
        cut: tokens cut from each text by ``max_seq_length`` (0, 0 when nothing was cut).
        baseline: the cosine's share that the all-zero reference explains (0 for the exact method).
        hidden: the share of the tokens removed by :meth:`hide_special` (0 until then).
        steps: integration steps of the approximate method (``None`` for the exact one).
    """

    text_a: str
    text_b: str
    tokens_a: tuple[str, ...]
    tokens_b: tuple[str, ...]
    matrix: np.ndarray
    cosine: float
    method: str
    special_a: tuple[bool, ...]
    special_b: tuple[bool, ...]
    word_a: tuple[int | None, ...]
    word_b: tuple[int | None, ...]
    spans_a: tuple[tuple[int, int], ...] | None = None
    spans_b: tuple[tuple[int, int], ...] | None = None
    cut: tuple[int, int] = (0, 0)
    baseline: float = 0.0
    hidden: float = 0.0
    steps: int | None = None

    @property
    def exact(self) -> bool:
        return self.method == "exact"

    @property
    def truncated(self) -> tuple[bool, bool]:
        """Whether ``max_seq_length`` cut text a / text b (``cut`` says by how many tokens)."""
        return self.cut[0] > 0, self.cut[1] > 0

    @property
    def total(self) -> float:
        """``matrix.sum() + hidden + baseline``: what the terms add up to (≈ ``cosine``)."""
        return float(self.matrix.sum()) + self.hidden + self.baseline

    @property
    def completeness_error(self) -> float:
        """``|matrix.sum() + hidden + baseline − cosine|``: float rounding for the exact method,
        the integration error for the approximate one."""
        return abs(self.total - self.cosine)

    @property
    def contributions_a(self) -> np.ndarray:
        """Each token of a's share of the cosine: the matrix's row sums."""
        return self.matrix.sum(axis=1)

    @property
    def contributions_b(self) -> np.ndarray:
        """Each token of b's share of the cosine: the matrix's column sums."""
        return self.matrix.sum(axis=0)

    @property
    def special_share(self) -> float:
        """The share of the cosine in rows or columns of special tokens (what hiding them removes)."""
        sa, sb = np.array(self.special_a, dtype=bool), np.array(self.special_b, dtype=bool)
        if not self.matrix.size:
            return 0.0
        return float(self.matrix[sa].sum() + self.matrix[~sa][:, sb].sum())

    def hide_special(self) -> TokenSimilarity:
        """The result without the rows and columns of special tokens; their share moves to ``hidden``."""
        keep_a = [i for i, s in enumerate(self.special_a) if not s]
        keep_b = [j for j, s in enumerate(self.special_b) if not s]
        return dataclasses.replace(
            self, **_select("a", self, keep_a), **_select("b", self, keep_b),
            matrix=_frozen(self.matrix[np.ix_(keep_a, keep_b)]), hidden=self.hidden + self.special_share,
        )

    def join_words(self) -> TokenSimilarity:
        """Subword tokens joined into words (their rows and columns summed: every sum is kept)."""
        labels_a, groups_a, spans_a, words_a = _groups(self.text_a, self.tokens_a, self.word_a, self.spans_a)
        labels_b, groups_b, spans_b, words_b = _groups(self.text_b, self.tokens_b, self.word_b, self.spans_b)
        matrix = np.array([[self.matrix[np.ix_(ga, gb)].sum() for gb in groups_b] for ga in groups_a])
        return dataclasses.replace(
            self, tokens_a=labels_a, tokens_b=labels_b, matrix=_frozen(matrix.reshape(len(groups_a), len(groups_b))),
            special_a=tuple(self.special_a[g[0]] for g in groups_a), special_b=tuple(self.special_b[g[0]] for g in groups_b),
            word_a=words_a, word_b=words_b, spans_a=spans_a, spans_b=spans_b,
        )

    def top_pairs(self, k: int = 5) -> list[tuple[str, str, float]]:
        """The ``k`` terms largest in size: ``(token of a, token of b, term)``, largest first."""
        flat = np.argsort(-np.abs(self.matrix), axis=None, kind="stable")[: max(int(k), 0)]
        rows, cols = np.unravel_index(flat, self.matrix.shape)
        return [(self.tokens_a[i], self.tokens_b[j], float(self.matrix[i, j])) for i, j in zip(rows, cols, strict=True)]

    def __repr__(self) -> str:
        how = "exact" if self.exact else f"{self.method}, {self.steps} steps, error {self.completeness_error:.2g}"
        return (f"TokenSimilarity(cosine={self.cosine:.4f}, {len(self.tokens_a)}×{len(self.tokens_b)} "
                f"terms, {how})")


def token_similarity(
    model: Any, a: str, b: str, *, method: Literal["auto", "exact", "integrated-gradients"] = "auto", steps: int = 32,
) -> TokenSimilarity:
    """The cosine of ``a`` and ``b`` under ``model``, split into token × token terms.

    Args:
        model: a workbench transformer model (``load_model``/``build_model``) or a
            ``SentenceTransformer`` (converted once through a temporary folder).
        a: the first text.
        b: the second text.
        method: ``"exact"`` (mean-like pooling, no Dense: refused otherwise), ``"integrated-gradients"``,
            or ``"auto"``: exact where it holds, else integrated gradients.
        steps: integration steps (Gauss–Legendre nodes) of the approximate method.

    Returns:
        A :class:`TokenSimilarity`.

    Raises:
        TypeError: ``model`` has no tokenizer and transformer (a plain encode function), or a text
            is not a string.
        ValueError: an empty text, an unknown method, or ``"exact"`` on a model where it does not hold.
    """
    return explain_pairs(model, [a], [b], method=method, steps=steps)[0]


def explain_pairs(
    model: Any, texts_a: Sequence[str], texts_b: Sequence[str], *,
    method: Literal["auto", "exact", "integrated-gradients"] = "auto", steps: int = 32, batch_size: int = 32,
) -> list[TokenSimilarity]:
    """:func:`token_similarity` for many pairs at once: each text runs through the transformer once,
    in batches of ``batch_size`` sorted by length.

    Example:
        >>> from workbench import load_model
        >>> model = load_model("all-MiniLM-L6-v2", device="cpu")
        >>> rs = explain_pairs(model, ["The film was good."] * 2, ["The film was not good.", "I liked it."])
        >>> [round(r.cosine, 2) for r in rs], [round(r.completeness_error, 6) for r in rs]
        ([0.79, 0.56], [0.0, 0.0])
    """
    model = _as_workbench_model(model)
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    a, b = _texts(texts_a, "texts_a"), _texts(texts_b, "texts_b")
    if len(a) != len(b):
        raise ValueError(f"texts_a and texts_b must have the same length, got {len(a)} and {len(b)}")
    pooling, head = _split_chain(model)
    why_not = _why_not_exact(pooling, head)
    if method == "exact" and why_not:
        raise ValueError(f"the exact decomposition needs mean pooling and no Dense layer; this model has {why_not}: "
                         "use method='integrated-gradients' (or 'auto')")
    exact = method == "exact" or (method == "auto" and not why_not)
    unique = list(dict.fromkeys(a + b))
    seen = dict(zip(unique, _token_vectors(model, unique, batch_size), strict=True))
    out = []
    for x, y in zip(a, b, strict=True):
        ta, tb = seen[x], seen[y]
        out.append(_exact(ta, tb, pooling, head) if exact else _integrated(ta, tb, pooling, head, steps))
    return out


# ----- the two methods -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Tokens:
    """One text as the pooling sees it: its token vectors ``(n, hidden)`` and what the tokens are."""

    text: str
    vectors: torch.Tensor
    tokens: tuple[str, ...]
    special: tuple[bool, ...]
    words: tuple[int | None, ...]
    spans: tuple[tuple[int, int], ...] | None
    cut: int


def _head_vector(tokens: torch.Tensor, pooling: Any, head: list[Any]) -> torch.Tensor:
    """Token vectors ``(batch, n, hidden)`` -> the head's output ``(batch, dim)`` before a last Normalize."""
    feats = {"token_embeddings": tokens, "attention_mask": torch.ones(tokens.shape[:2], dtype=torch.long, device=tokens.device)}
    feats = pooling(feats)
    for module in head:
        feats = module(feats)
    return feats["sentence_embedding"]


def _cosine(u: torch.Tensor, v: torch.Tensor) -> float:
    u, v = u.double(), v.double()
    return float(u @ v / (u.norm() * v.norm()).clamp(min=1e-300))


def _result(ta: _Tokens, tb: _Tokens, matrix: np.ndarray, cosine: float, method: str, **extra: Any) -> TokenSimilarity:
    return TokenSimilarity(
        text_a=ta.text, text_b=tb.text, tokens_a=ta.tokens, tokens_b=tb.tokens, matrix=_frozen(matrix), cosine=cosine,
        method=method, special_a=ta.special, special_b=tb.special, word_a=ta.words, word_b=tb.words,
        spans_a=ta.spans, spans_b=tb.spans, cut=(ta.cut, tb.cut), **extra,
    )


def _pool_weights(n: int, mode: str) -> np.ndarray:
    """The coefficients ``c_i`` of a linear pooling over ``n`` unmasked tokens (right padding)."""
    if mode == "weightedmean":
        w = np.arange(1, n + 1, dtype=np.float64)
        return w / w.sum()
    return np.full(n, 1.0 / (n if mode == "mean" else np.sqrt(n)))


def _exact(ta: _Tokens, tb: _Tokens, pooling: Any, head: list[Any]) -> TokenSimilarity:
    t, u = ta.vectors.double().cpu().numpy(), tb.vectors.double().cpu().numpy()  # (n, h), (m, h)
    ca, cb = _pool_weights(len(t), pooling.modes[0]), _pool_weights(len(u), pooling.modes[0])
    mean_a, mean_b = ca @ t, cb @ u
    matrix = (ca[:, None] * (t @ u.T) * cb[None, :]) / (np.linalg.norm(mean_a) * np.linalg.norm(mean_b))
    with torch.no_grad():  # the model's own cosine, through its own pooling and head
        cosine = _cosine(_head_vector(ta.vectors[None], pooling, head)[0], _head_vector(tb.vectors[None], pooling, head)[0])
    return _result(ta, tb, matrix, cosine, "exact")


def _integrated_jacobian(x: torch.Tensor, pooling: Any, head: list[Any], steps: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Integrated gradients of every output of the head, for every token: ``(n, dim)`` attributions
    ``J`` with ``J.sum(0) ≈ h(x) − h(0)``, and ``h(x)``, ``h(0)``."""
    nodes, weights = np.polynomial.legendre.leggauss(steps)  # on [-1, 1]
    alphas = torch.tensor((nodes + 1) / 2, dtype=x.dtype, device=x.device)
    weights_t = torch.tensor(weights / 2, dtype=x.dtype, device=x.device)
    path = (alphas[:, None, None] * x[None]).requires_grad_(True)  # (steps, n, hidden)
    with torch.enable_grad():
        out = _head_vector(path, pooling, head)  # (steps, dim)
        dim = out.shape[1]
        attributions = []
        for start in range(0, dim, 64):  # one backward pass per output dimension, 64 at a time
            rows = torch.arange(start, min(start + 64, dim), device=x.device)
            grad_out = torch.zeros((len(rows), *out.shape), dtype=out.dtype, device=x.device)
            grad_out[torch.arange(len(rows)), :, rows] = 1.0
            (grads,) = torch.autograd.grad(out, path, grad_out, retain_graph=True, is_grads_batched=True)
            # grads: (rows, steps, n, hidden) -> (n, rows): Σ_steps w_k Σ_hidden x · ∂h/∂x
            attributions.append(torch.einsum("dsnh,s,nh->nd", grads, weights_t, x))
    with torch.no_grad():
        ends = _head_vector(torch.stack([x, torch.zeros_like(x)]), pooling, head)
    return torch.cat(attributions, dim=1), ends[0], ends[1]


def _integrated(ta: _Tokens, tb: _Tokens, pooling: Any, head: list[Any], steps: int) -> TokenSimilarity:
    ja, ha, ra = _integrated_jacobian(ta.vectors.float(), pooling, head, steps)
    jb, hb, rb = _integrated_jacobian(tb.vectors.float(), pooling, head, steps)
    ja, jb, ha, hb, ra, rb = (v.detach().double().cpu() for v in (ja, jb, ha, hb, ra, rb))
    scale = float(ha.norm() * hb.norm())
    matrix = (ja @ jb.T).numpy() / scale
    cosine = _cosine(ha, hb)
    baseline = cosine - float((ha - ra) @ (hb - rb)) / scale  # what h(0) explains: exact arithmetic, no integral
    return _result(ta, tb, matrix, cosine, "integrated-gradients", baseline=baseline, steps=steps)


# ----- the model's side ------------------------------------------------------------------------------


def _as_workbench_model(model: Any) -> Any:
    from workbench.models.model import EmbeddingModel
    from workbench.models.transformer import Transformer

    if isinstance(model, EmbeddingModel):
        if not isinstance(model.transformer, Transformer) or model.backend != "torch":
            kind = "a static model" if model.is_static else f"the {model.backend} backend"
            raise TypeError(f"token explanations need a torch transformer model; this one is {kind}")
        return model
    if hasattr(model, "_first_module") and hasattr(model, "save"):  # a SentenceTransformer: read through its files
        import tempfile

        with tempfile.TemporaryDirectory() as folder:
            model.save(folder)
            return EmbeddingModel.load(folder, device=str(model.device))
    raise TypeError(
        f"token explanations need a transformer model (a workbench EmbeddingModel or a SentenceTransformer) whose "
        f"tokenizer and token vectors can be read; got {type(model).__name__}, which only gives sentence vectors"
    )


def _split_chain(model: Any) -> tuple[Any, list[Any]]:
    """The Pooling module and the modules after it (a last Normalize left out: it does not change a cosine)."""
    from workbench.models.modules import Normalize, Pooling

    layers = list(model.layers)
    if len(layers) < 2 or not isinstance(layers[1], Pooling):
        raise TypeError(f"token explanations need a Transformer followed by a Pooling module; got {model!r}")
    head = layers[2:]
    while head and isinstance(head[-1], Normalize):
        head = head[:-1]
    return layers[1], head


def _why_not_exact(pooling: Any, head: list[Any]) -> str:
    modes = pooling.modes
    if len(modes) != 1 or modes[0] not in _LINEAR_POOLINGS:
        return f"{'+'.join(modes)} pooling"
    if head:
        return " and ".join(type(m).__name__ for m in head) + " after the pooling"
    return ""


def _texts(texts: Sequence[str], name: str) -> list[str]:
    if isinstance(texts, str):
        raise TypeError(f"{name} must be a list of texts, got one string")
    out = list(texts)
    for i, text in enumerate(out):
        if not isinstance(text, str):
            raise TypeError(f"{name}[{i}] is {type(text).__name__}, not a string")
        if not text.strip():
            raise ValueError(f"{name}[{i}] is empty: an explanation needs a text with at least one word")
    return out


def _token_vectors(model: Any, texts: list[str], batch_size: int) -> list[_Tokens]:
    """Each text's token vectors as the pooling receives them, with its tokens, words and cut."""
    transformer = model.transformer
    tok = transformer.tokenizer
    seen = [t.lower() if transformer.do_lower_case else t for t in texts]
    fast = bool(getattr(tok, "is_fast", False))
    full = tok(seen, truncation=False, verbose=False)["input_ids"]
    order = sorted(range(len(texts)), key=lambda i: -len(full[i]))
    out: list[_Tokens | None] = [None] * len(texts)
    device = model.device
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        enc = tok([seen[i] for i in rows], padding=True, truncation="longest_first", max_length=transformer.max_seq_length,
                  return_tensors="pt", return_offsets_mapping=fast, return_special_tokens_mask=True)
        feats = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        with torch.no_grad():
            hidden = transformer(feats)["token_embeddings"]  # (batch, seq, hidden)
        for r, i in enumerate(rows):
            keep = enc["attention_mask"][r].bool()
            n = int(keep.sum())
            ids = enc["input_ids"][r][keep].tolist()
            special = tuple(bool(s) for s in enc["special_tokens_mask"][r][keep].tolist())
            if fast:
                words = tuple(enc.word_ids(r)[:n])
                spans = tuple((int(s), int(e)) for s, e in enc["offset_mapping"][r][keep].tolist())
            else:  # no word ids: a WordPiece "##" continues the word before it
                words, w = [], -1
                for token, s in zip(tok.convert_ids_to_tokens(ids), special, strict=True):
                    w += 0 if s or token.startswith("##") and w >= 0 else 1
                    words.append(None if s else w)
                words, spans = tuple(words), None
            out[i] = _Tokens(texts[i], hidden[r][keep].detach(), tuple(tok.convert_ids_to_tokens(ids)), special, words,
                             spans, max(len(full[i]) - n, 0))
    return out  # type: ignore[return-value]


# ----- helpers -----------------------------------------------------------------------------------------


def _frozen(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float64)
    matrix.setflags(write=False)
    return matrix


def _select(side: str, r: TokenSimilarity, keep: list[int]) -> dict[str, Any]:
    spans = getattr(r, f"spans_{side}")
    return {
        f"tokens_{side}": tuple(getattr(r, f"tokens_{side}")[i] for i in keep),
        f"special_{side}": tuple(getattr(r, f"special_{side}")[i] for i in keep),
        f"word_{side}": tuple(getattr(r, f"word_{side}")[i] for i in keep),
        f"spans_{side}": None if spans is None else tuple(spans[i] for i in keep),
    }


def _groups(text: str, tokens: tuple[str, ...], words: tuple[int | None, ...],
            spans: tuple[tuple[int, int], ...] | None) -> tuple[tuple[str, ...], list[list[int]], Any, tuple[int | None, ...]]:
    """Runs of tokens of one word: (labels, token indices per group, spans, word ids)."""
    groups: list[list[int]] = []
    for k, w in enumerate(words):
        if w is not None and groups and words[groups[-1][0]] == w:
            groups[-1].append(k)
        else:
            groups.append([k])
    labels = []
    for g in groups:
        if spans is not None and words[g[0]] is not None:
            labels.append(text[spans[g[0]][0]:spans[g[-1]][1]])
        else:
            labels.append("".join(tokens[k][2:] if i and tokens[k].startswith("##") else tokens[k] for i, k in enumerate(g)))
    new_spans = None if spans is None else tuple((spans[g[0]][0], spans[g[-1]][1]) for g in groups)
    return tuple(labels), groups, new_spans, tuple(words[g[0]] for g in groups)
