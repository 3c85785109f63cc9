"""Training losses: the math as pure functions, plus thin modules that embed and call them.

Pure functions take embeddings and return a scalar tensor, so tests can feed them hand-built
tensors. Modules hold the model and the hyper-parameters; the training loop calls
``loss(features, labels)`` with one tokenized feature dict per text column and then
``loss.backward()``. Every module reports ``config()`` for the model card.

Conventions: ``scale = 1 / temperature`` (20 means temperature 0.05); "cosine" similarity
normalizes rows first, "dot" uses raw inner products. Non-finite inputs are not masked: a NaN
anywhere in the embeddings makes the loss NaN, so a diverging run shows up in the loss curve.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from workbench import rng
from workbench.similarity import canonical_fn_name

# The similarity functions a contrastive loss can score with (of workbench.similarity's list):
# the distances have no scale-invariant softmax temperature, so they are not offered here.
LOSS_SIMILARITIES = ("cosine", "dot")


def _loss_similarity(similarity: Any) -> str:
    name = canonical_fn_name(similarity)
    if name not in LOSS_SIMILARITIES:
        raise ValueError(f"similarity={similarity!r}: losses score with {' or '.join(LOSS_SIMILARITIES)}, "
                         f"not a distance")
    return name


# ----- pure functions ----------------------------------------------------------------------------
def _check_2d(name: str, x: Tensor) -> None:
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty (batch, dim) tensor; got shape {tuple(x.shape)}")


def _check_same(name: str, x: Tensor, ref_name: str, ref: Tensor) -> None:
    _check_2d(name, x)
    if x.shape != ref.shape:
        raise ValueError(f"{name} has shape {tuple(x.shape)} but {ref_name} has shape {tuple(ref.shape)}")


def _check_scale(scale: float) -> None:
    if not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive finite number (1/temperature); got {scale}")


def mnrl_loss(
    anchors: Tensor,
    positives: Tensor,
    negatives: Tensor | Sequence[Tensor] | None = None,
    scale: float = 20.0,
    similarity: str = "cosine",
    offset: int = 0,
) -> Tensor:
    """MultipleNegativesRankingLoss (InfoNCE with in-batch negatives).

    For anchor ``i`` the candidates are every positive in the batch plus every hard negative of
    every row (negative columns are stacked after the positives). The loss is the mean over
    anchors of the cross-entropy with target ``i`` over ``scale * sim(anchor_i, candidate_j)``.

    Args:
        anchors: ``(batch, dim)`` anchor embeddings.
        positives: ``(batch, dim)``; row ``i`` is the positive of anchor ``i``. May hold more rows
            than ``anchors`` (the positives of every process, gathered): then row ``offset + i``
            is the positive of anchor ``i`` and every other row is a negative.
        negatives: tensors shaped like ``positives`` (one per negative column), one, or None.
        scale: logit multiplier, ``scale = 1 / temperature``.
        similarity: ``"cosine"`` or ``"dot"``.
        offset: where the anchors' positives start among ``positives``.

    Returns:
        A scalar tensor. With one-hot anchors equal to their positives and cosine similarity it
        is ``log(1 + (n - 1) * exp(-scale))``.

    Example:
        >>> onehot = torch.eye(4)  # (batch, dim)
        >>> math.isclose(float(mnrl_loss(onehot, onehot, scale=2.0)), math.log(1 + 3 * math.exp(-2.0)), rel_tol=1e-6)
        True
    """
    similarity = _loss_similarity(similarity)
    _check_scale(scale)
    _check_2d("anchors", anchors)
    if positives.shape[0] <= anchors.shape[0] and offset == 0:
        _check_same("positives", positives, "anchors", anchors)
    else:
        _check_2d("positives", positives)
        if positives.shape[1] != anchors.shape[1] or not 0 <= offset <= positives.shape[0] - anchors.shape[0]:
            raise ValueError(f"positives has shape {tuple(positives.shape)}: rows {offset}..{offset + anchors.shape[0]} "
                             f"cannot hold the positives of anchors shaped {tuple(anchors.shape)}")
    if negatives is None:
        negatives = []
    elif isinstance(negatives, Tensor):
        negatives = [negatives]
    for k, neg in enumerate(negatives):
        _check_same(f"negatives[{k}]", neg, "positives", positives)
    candidates = torch.cat([positives, *negatives], dim=0)  # (batch * (1 + k), dim)
    dtype = torch.promote_types(anchors.dtype, torch.float32)  # softmax in fp32 (or fp64), also under autocast
    queries, candidates = anchors.to(dtype), candidates.to(dtype)
    if similarity == "cosine":
        queries, candidates = F.normalize(queries, dim=-1), F.normalize(candidates, dim=-1)
    logits = scale * queries @ candidates.T  # (batch, batch * (1 + k))
    target = torch.arange(offset, offset + anchors.shape[0], device=anchors.device)  # anchor i's positive
    return F.cross_entropy(logits, target)


def gather_rows(x: Tensor) -> tuple[Tensor, int]:
    """Every process's rows of ``x``, in rank order, and where this process's rows start.

    Gradients flow back to the process that computed each row (summed over the processes whose
    losses used it), so a loss over the gathered rows trains every process's part. Processes
    may hold different numbers of rows (a batch that does not split evenly): rows are padded to
    the largest share for the exchange and the padding is dropped after it. Outside
    ``torch.distributed`` (one process) ``x`` comes back as it is, with offset 0.

    Args:
        x: ``(rows, dim)`` this process's embeddings.

    Returns:
        ``(all_rows, offset)``: a ``(sum of rows, dim)`` tensor and the index of this process's first row.
    """
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x, 0
    world, rank = dist.get_world_size(), dist.get_rank()
    counts = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(world)]
    dist.all_gather(counts, torch.tensor([x.shape[0]], dtype=torch.long, device=x.device))
    sizes = [int(c) for c in counts]
    most = max(sizes)
    padded = torch.cat([x, x.new_zeros(most - x.shape[0], *x.shape[1:])]) if x.shape[0] < most else x
    stacked = _AllGather.apply(padded.contiguous())  # (world, most, dim)
    return torch.cat([stacked[r, :n] for r, n in enumerate(sizes)]), sum(sizes[:rank])


class _AllGather(torch.autograd.Function):
    """All processes' equally shaped tensors, stacked; the backward pass sums each process's
    gradient over all processes (one all-reduce) and keeps its own part."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        import torch.distributed as dist

        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x)
        return torch.stack(parts)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        import torch.distributed as dist

        grad = grad.contiguous()
        dist.all_reduce(grad)  # sum over processes: every process's loss may use every row
        return grad[dist.get_rank()]


def mse_loss(student: Tensor, teacher: Tensor) -> Tensor:
    """Mean squared error over all ``batch * dim`` elements (no x100, unlike the MSE evaluator).

    Args:
        student: ``(batch, dim)`` student embeddings.
        teacher: ``(batch, dim)`` target (teacher) embeddings.

    Returns:
        A scalar tensor.
    """
    _check_2d("student", student)
    _check_same("teacher", teacher, "student", student)
    return F.mse_loss(student, teacher.to(student.dtype))


def cosent_loss(emb1: Tensor, emb2: Tensor, scores: Tensor, scale: float = 20.0) -> Tensor:
    """CoSENT: every pair scored higher should have a higher cosine than every pair scored lower.

    ``loss = log(1 + sum over (i, j) with scores_i > scores_j of exp(scale * (cos_j - cos_i)))``,
    where ``cos_i = cos(emb1_i, emb2_i)``; tied scores contribute nothing.

    Args:
        emb1: ``(batch, dim)`` first texts of the pairs.
        emb2: ``(batch, dim)`` second texts.
        scores: ``(batch,)`` gold similarity scores (any scale; only their order matters).
        scale: logit multiplier, ``scale = 1 / temperature``.

    Returns:
        A scalar tensor.
    """
    _check_scale(scale)
    _check_2d("emb1", emb1)
    _check_same("emb2", emb2, "emb1", emb1)
    if scores.numel() != emb1.shape[0] or scores.ndim > 2:
        raise ValueError(f"scores has shape {tuple(scores.shape)}; expected ({emb1.shape[0]},), one per pair")
    scores = scores.reshape(-1).to(emb1.device)
    dtype = torch.promote_types(emb1.dtype, torch.float32)
    cos = scale * F.cosine_similarity(emb1.to(dtype), emb2.to(dtype), dim=-1)  # (batch,)
    diff = cos[None, :] - cos[:, None]  # (batch, batch): [i, j] = cos_j - cos_i
    higher = scores[:, None] > scores[None, :]  # (batch, batch): pairs that must be ordered
    terms = torch.cat([cos.new_zeros(1), diff[higher]])  # the zero is the "1 +" inside the log
    return torch.logsumexp(terms, dim=0)


# ----- loss modules --------------------------------------------------------------------------------
def _embed(model: nn.Module, features: dict[str, Any]) -> Tensor:
    device = next(model.parameters()).device
    return model({k: v.to(device) if isinstance(v, Tensor) else v for k, v in features.items()})  # (batch, dim)


class _Loss(nn.Module):
    """Shared plumbing: holds the model and reports the hyper-parameters for the model card."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def _params(self) -> dict[str, Any]:
        return {}

    def config(self) -> dict[str, Any]:
        """``{"name": class name, "params": hyper-parameters}`` for the model card."""
        return {"name": type(self).__name__, "params": self._params()}


def _need_columns(features: list[dict[str, Any]], name: str) -> None:
    if len(features) < 2:
        raise ValueError(f"{name} needs at least 2 text columns (anchor, positive[, negatives...]); got {len(features)}")


class MultipleNegativesRankingLoss(_Loss):
    """MNRL over columns (anchor, positive, negative_1, ...): see :func:`mnrl_loss`.

    Args:
        model: the embedding model being trained.
        scale: logit multiplier, ``scale = 1 / temperature``.
        similarity: ``"cosine"`` or ``"dot"``.
        gather_across_devices: when training on several processes (torchrun, accelerate
            launch), score each anchor against the positives and negatives of *every* process's
            share of the batch, as one process would with the whole batch; the gradient is then
            the one-process gradient. ``False``: each process uses its own share only (fewer
            negatives; sentence-transformers' default). No effect in one process.

    Example:
        >>> from workbench.models import build_model
        >>> model = build_model("all-MiniLM-L6-v2", keep_layers=[0], dense=32, normalize=True, seed=0)
        >>> loss_fn = MultipleNegativesRankingLoss(model)
        >>> cols = [model.tokenize(["a cat sits", "a dog runs"]), model.tokenize(["a cat is sitting", "a dog is running"])]
        >>> loss = loss_fn(cols)  # each anchor against both positives: a 2-way cross-entropy
        >>> loss.backward()
        >>> loss.shape, 0 < float(loss.detach()) < 2
        (torch.Size([]), True)
    """

    def __init__(self, model: nn.Module, scale: float = 20.0, similarity: str = "cosine",
                 gather_across_devices: bool = True):
        super().__init__(model)
        _check_scale(scale)
        similarity = _loss_similarity(similarity)
        self.scale = float(scale)
        self.similarity = similarity
        self.gather_across_devices = bool(gather_across_devices)

    def _params(self) -> dict[str, Any]:
        return {"scale": self.scale, "similarity": self.similarity, "gather_across_devices": self.gather_across_devices}

    def forward(self, features: list[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        _need_columns(features, type(self).__name__)
        return self.from_embeddings([_embed(self.model, f) for f in features], labels)

    def from_embeddings(self, embs: list[Tensor], labels: Tensor | None = None) -> Tensor:
        """The loss of already embedded columns, each ``(share, dim)`` (what :class:`MatryoshkaLoss` calls)."""
        _need_columns(embs, type(self).__name__)
        if not self.gather_across_devices:
            return mnrl_loss(embs[0], embs[1], embs[2:], self.scale, self.similarity)
        share = embs[0].shape[0]
        gathered = [gather_rows(e) for e in embs[1:]]  # each (batch, dim): every process's share
        candidates, offset = [g for g, _ in gathered], gathered[0][1]
        loss = mnrl_loss(embs[0], candidates[0], candidates[1:], self.scale, self.similarity, offset=offset)
        batch = candidates[0].shape[0]
        if batch == share:
            return loss
        # DDP averages the processes' gradients; weighting each process's mean by its share of
        # the batch makes that average the gradient of the mean over the whole batch, also when
        # the batch does not split evenly.
        world = torch.distributed.get_world_size()
        return loss * (share * world / batch)


def _slice_rows(features: dict[str, Any], start: int, stop: int) -> dict[str, Any]:
    """Rows ``start:stop`` of a padded feature dict, with trailing all-padding columns dropped."""
    mask = features.get("attention_mask")
    seq = mask.shape[1] if isinstance(mask, Tensor) else None
    keep = seq
    if seq is not None:
        used = mask[start:stop].any(dim=0).nonzero()  # columns holding at least one real token
        keep = int(used.max()) + 1 if used.numel() else seq  # only right padding is trimmed
    out = {}
    for k, v in features.items():
        if isinstance(v, Tensor) and v.ndim >= 1:
            v = v[start:stop]
            if seq is not None and v.ndim >= 2 and v.shape[1] == seq:
                v = v[:, :keep]
        out[k] = v
    return out


@dataclass
class _GradCache:
    """What step (3) of GradCache needs: the mini-batches, their RNG states and d loss / d embedding."""

    model: nn.Module
    device: torch.device  # where the model runs: its generator is replayed with the CPU's
    params: list[nn.Parameter]
    minibatches: list[list[dict[str, Any]]]  # [column][mini-batch] feature dicts
    rng_states: list[list[dict[str, Any]]]  # [column][mini-batch] rng.capture(device) before its forward pass
    grads: list[list[Tensor]]  # [column][mini-batch] (mini, dim)
    autocast: tuple[str, bool, torch.dtype]

    def param_grads(self, grad_output: Tensor) -> list[Tensor | None]:
        """Re-embed each mini-batch with grad (same RNG, same autocast) and pull back its cached grad."""
        totals: list[Tensor | None] = [None] * len(self.params)
        device_type, enabled, dtype = self.autocast
        outer = rng.capture(self.device, python_numpy=False)
        try:
            for mbs, states, grads in zip(self.minibatches, self.rng_states, self.grads, strict=True):
                for feats, state, grad in zip(mbs, states, grads, strict=True):
                    rng.restore(state)
                    with torch.enable_grad(), torch.autocast(device_type, dtype=dtype, enabled=enabled):
                        emb = _embed(self.model, feats)  # (mini, dim)
                    pulled = torch.autograd.grad(
                        emb, self.params, grad_outputs=(grad * grad_output).to(emb.dtype), allow_unused=True
                    )
                    for k, g in enumerate(pulled):
                        if g is not None:
                            totals[k] = g if totals[k] is None else totals[k] + g
        finally:
            rng.restore(outer)  # the replay leaves the global RNG where the forward pass left it
        return totals


class _GradCacheFunction(torch.autograd.Function):
    """Identity on the loss value whose backward runs GradCache step (3) for the parameters."""

    @staticmethod
    def forward(ctx: Any, cache: _GradCache, loss: Tensor, *params: Tensor) -> Tensor:
        ctx.cache = cache
        return loss.detach().clone()

    @staticmethod
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        return (None, None, *ctx.cache.param_grads(grad_output))


class CachedMultipleNegativesRankingLoss(MultipleNegativesRankingLoss):
    """MNRL with GradCache: a large batch in the memory of ``mini_batch_size`` texts.

    The forward pass (1) embeds every column in mini-batches without grad, keeping each
    mini-batch's RNG state, and (2) computes :func:`mnrl_loss` on those embeddings and its
    gradient with respect to them. The returned loss's ``backward()`` (3) re-embeds each
    mini-batch with grad, replaying the RNG state so dropout masks match, and backpropagates
    the cached gradient. Loss and parameter gradients equal plain MNRL computed on the same
    mini-batches; the cost is a second forward pass. Mini-batches are trimmed of trailing
    all-padding columns, which only changes results by float noise.

    It does not gather across processes: under several processes each anchor is scored against
    its own process's share of the batch only, and ``config()`` says
    ``gather_across_devices: False``.

    Args:
        model: the embedding model being trained.
        scale: logit multiplier, ``scale = 1 / temperature``.
        mini_batch_size: texts per forward pass; the memory knob.
        similarity: ``"cosine"`` or ``"dot"``.
        gather_across_devices: only ``False`` (the default); ``True`` is refused.

    Example:
        >>> from workbench.models import build_model
        >>> model = build_model("all-MiniLM-L6-v2", keep_layers=[0], dense=32, normalize=True, seed=0).eval()
        >>> texts = [f"sentence number {i}" for i in range(32)]
        >>> cols = [model.tokenize(texts), model.tokenize(texts[::-1])]
        >>> cached = CachedMultipleNegativesRankingLoss(model, mini_batch_size=8)(cols)  # 4 forward passes per column
        >>> plain = MultipleNegativesRankingLoss(model, gather_across_devices=False)(cols)
        >>> abs(float(cached.detach()) - float(plain.detach())) < 1e-5
        True
        >>> cached.backward()
    """

    def __init__(self, model: nn.Module, scale: float = 20.0, mini_batch_size: int = 32, similarity: str = "cosine",
                 gather_across_devices: bool = False):
        if gather_across_devices:
            raise ValueError("CachedMultipleNegativesRankingLoss scores against its own process's batch only: "
                             "gather_across_devices=True is not supported (MultipleNegativesRankingLoss gathers)")
        super().__init__(model, scale, similarity, gather_across_devices=False)
        if int(mini_batch_size) < 1:
            raise ValueError(f"mini_batch_size must be >= 1; got {mini_batch_size}")
        self.mini_batch_size = int(mini_batch_size)

    def _params(self) -> dict[str, Any]:
        return {**super()._params(), "mini_batch_size": self.mini_batch_size}

    def forward(self, features: list[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        _need_columns(features, type(self).__name__)
        device = next(self.model.parameters()).device
        minibatches, rng_states, embs, row_counts = [], [], [], []
        for feats in features:  # step (1): embed without grad, remember each mini-batch's RNG state
            n = int(next(v for v in feats.values() if isinstance(v, Tensor)).shape[0])
            mbs = [_slice_rows(feats, i, i + self.mini_batch_size) for i in range(0, n, self.mini_batch_size)]
            states, outs = [], []
            for mb in mbs:
                states.append(rng.capture(device, python_numpy=False))
                with torch.no_grad():
                    outs.append(_embed(self.model, mb))  # (mini, dim)
            minibatches.append(mbs)
            rng_states.append(states)
            embs.append(torch.cat(outs))  # (batch, dim)
            row_counts.append([int(o.shape[0]) for o in outs])
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not torch.is_grad_enabled() or not params:  # evaluation: the value is all that is wanted
            return mnrl_loss(embs[0], embs[1], embs[2:], self.scale, self.similarity)
        leaves = [e.detach().requires_grad_() for e in embs]  # step (2): d loss / d embeddings
        loss = mnrl_loss(leaves[0], leaves[1], leaves[2:], self.scale, self.similarity)
        grads = torch.autograd.grad(loss, leaves)
        cache = _GradCache(
            model=self.model,
            device=device,
            params=params,
            minibatches=minibatches,
            rng_states=rng_states,
            grads=[list(g.split(sizes)) for g, sizes in zip(grads, row_counts, strict=True)],
            autocast=(device.type, torch.is_autocast_enabled(device.type), torch.get_autocast_dtype(device.type)),
        )
        return _GradCacheFunction.apply(cache, loss.detach(), *params)  # step (3) runs in its backward


class MSELoss(_Loss):
    """Distillation: MSE between the student's embeddings and teacher embeddings (the labels).

    With several text columns (e.g. a sentence and its translation), each column is pulled to
    the same teacher embedding and the per-column losses are averaged.

    Args:
        model: the student model.

    Example:
        >>> from workbench.models import build_model
        >>> student = build_model("all-MiniLM-L6-v2", keep_layers=[0, 5])
        >>> teacher = torch.zeros(1, student.dim)  # the teacher's embedding of the sentence
        >>> loss = MSELoss(student)([student.tokenize(["a cat sits"])], teacher)
        >>> embedding = student.encode(["a cat sits"])
        >>> abs(float(loss.detach()) - float((embedding ** 2).mean())) < 1e-6  # the mean squared distance to it
        True
    """

    def forward(self, features: list[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        if labels is None:
            raise ValueError("MSELoss needs labels: the teacher embeddings, shape (batch, dim)")
        return self.from_embeddings([_embed(self.model, f) for f in features], labels)

    def from_embeddings(self, embs: list[Tensor], labels: Tensor | None = None) -> Tensor:
        """The loss of already embedded columns, each ``(batch, dim)``, against teacher ``labels``."""
        if labels is None:
            raise ValueError("MSELoss needs labels: the teacher embeddings, shape (batch, dim)")
        teacher = labels.to(embs[0].device)
        return torch.stack([mse_loss(e, teacher) for e in embs]).mean()


class CoSENTLoss(_Loss):
    """CoSENT over (text1, text2) columns with gold scores as labels: see :func:`cosent_loss`.

    Args:
        model: the embedding model being trained.
        scale: logit multiplier, ``scale = 1 / temperature``.

    Example:
        >>> from workbench.models import build_model
        >>> model = build_model("all-MiniLM-L6-v2", keep_layers=[0], seed=0)
        >>> a, b = model.tokenize(["a cat", "a car"]), model.tokenize(["a kitten", "a tree"])
        >>> loss = CoSENTLoss(model)([a, b], torch.tensor([0.9, 0.1]))
        >>> loss.shape, float(loss.detach()) >= 0
        (torch.Size([]), True)
    """

    def __init__(self, model: nn.Module, scale: float = 20.0):
        super().__init__(model)
        _check_scale(scale)
        self.scale = float(scale)

    def _params(self) -> dict[str, Any]:
        return {"scale": self.scale}

    def forward(self, features: list[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        self._check(features, labels)
        return self.from_embeddings([_embed(self.model, f) for f in features], labels)

    def from_embeddings(self, embs: list[Tensor], labels: Tensor | None = None) -> Tensor:
        """The loss of two already embedded columns, each ``(batch, dim)``, with gold ``labels``."""
        self._check(embs, labels)
        return cosent_loss(embs[0], embs[1], labels, self.scale)

    @staticmethod
    def _check(columns: list[Any], labels: Tensor | None) -> None:
        if len(columns) != 2 or labels is None:
            raise ValueError(f"CoSENTLoss needs 2 text columns and score labels; got {len(columns)} columns, labels={labels is not None}")


class MatryoshkaLoss(_Loss):
    """A loss summed over nested prefixes of the embedding: ``sum_d weight_d * inner(emb[:, :d])``.

    Trains a model whose first ``d`` dimensions are a usable embedding on their own, for every
    ``d`` in ``dims`` (Kusupati et al., 2022, "Matryoshka Representation Learning"): such a model
    can be encoded with ``truncate_dim=d`` and lose little. The model embeds each batch once; each
    prefix is then scored by the inner loss, as sentence-transformers' ``MatryoshkaLoss`` does.

    Prefixes are scaled to unit length for the contrastive inner losses (MNRL, CoSENT), as
    sentence-transformers does (no effect with cosine similarity; with ``similarity = "dot"`` it
    scores the renormalised prefix). For ``MSELoss`` (distillation) the student's prefix is
    compared with the teacher's prefix (the labels, truncated to ``d``) and neither is
    renormalised; sentence-transformers renormalises the student's prefix only, which asks a unit
    vector to equal a shorter one, so the two differ there.

    Args:
        model: the embedding model being trained.
        inner: the loss applied at each size: ``"MultipleNegativesRankingLoss"``, ``"CoSENTLoss"``
            or ``"MSELoss"`` (by class name, as a recipe names it), or such a loss module.
        dims: the prefix sizes, each in ``1..model.dim``, e.g. ``(256, 128, 64, 32)``; listed in
            any order and used largest first. Include the full size to keep training it.
        weights: one weight per size (in the order of ``dims``); ``None``: 1 each.
        **inner_params: the inner loss's own hyper-parameters (``scale``, ``similarity``, ...)
            when ``inner`` is a name.

    Example:
        >>> from workbench.models import build_model
        >>> model = build_model("all-MiniLM-L6-v2", keep_layers=[0], dense=32, normalize=True, seed=0)
        >>> loss_fn = MatryoshkaLoss(model, "MultipleNegativesRankingLoss", dims=[32, 16, 8], scale=20.0)
        >>> cols = [model.tokenize(["a cat sits", "a dog runs"]), model.tokenize(["a cat is sitting", "a dog is running"])]
        >>> loss = loss_fn(cols)  # MNRL at 32, 16 and 8 dimensions, summed
        >>> loss.backward()
        >>> loss_fn.config()["params"]["dims"]
        [32, 16, 8]
    """

    def __init__(self, model: nn.Module, inner: str | nn.Module = "MultipleNegativesRankingLoss",
                 dims: tuple[int, ...] = (), weights: tuple[float, ...] | None = None, **inner_params: Any):
        super().__init__(model)
        self.inner = _inner_loss(model, inner, inner_params)
        dims = tuple(dims)
        if not dims:
            raise ValueError("MatryoshkaLoss needs dims: the prefix sizes to train, e.g. dims = [256, 128, 64, 32]")
        bad = [d for d in dims if isinstance(d, bool) or not isinstance(d, int) or d < 1]
        if bad:
            raise ValueError(f"dims must be whole numbers >= 1; got {list(dims)}")
        if len(set(dims)) != len(dims):
            raise ValueError(f"dims lists a size twice: {list(dims)}")
        full = getattr(model, "dim", None)  # None for a stand-in model (a recipe being checked)
        if isinstance(full, int) and max(dims) > full:
            raise ValueError(f"dims {list(dims)}: {max(dims)} is more than the model's embedding dim {full}; "
                             f"each size must be at most {full}")
        weights = (1.0,) * len(dims) if weights is None else tuple(float(w) for w in weights)
        if len(weights) != len(dims):
            raise ValueError(f"weights has {len(weights)} values for {len(dims)} dims; give one weight per size")
        if not all(math.isfinite(w) and w >= 0 for w in weights):
            raise ValueError(f"weights must be finite and >= 0; got {list(weights)}")
        # Largest first, as sentence-transformers orders them (the sum is the same either way).
        pairs = sorted(zip(dims, weights, strict=True), key=lambda p: -p[0])
        self.dims = tuple(d for d, _ in pairs)
        self.weights = tuple(w for _, w in pairs)

    def _params(self) -> dict[str, Any]:
        inner = self.inner.config()
        return {"inner": inner["name"], "dims": list(self.dims), "weights": list(self.weights), **inner["params"]}

    def forward(self, features: list[dict[str, Tensor]], labels: Tensor | None = None) -> Tensor:
        embs = [_embed(self.model, f) for f in features]  # each (batch, dim): one forward pass per column
        return self.from_embeddings(embs, labels)

    def from_embeddings(self, embs: list[Tensor], labels: Tensor | None = None) -> Tensor:
        """The summed loss of already embedded columns, each ``(batch, dim)``."""
        full = embs[0].shape[-1]
        if max(self.dims) > full:
            raise ValueError(f"dims {list(self.dims)}: the embeddings have only {full} dimensions")
        distill = isinstance(self.inner, MSELoss)
        total = embs[0].new_zeros((), dtype=torch.promote_types(embs[0].dtype, torch.float32))
        for d, w in zip(self.dims, self.weights, strict=True):
            if distill:
                prefixes = [e[:, :d] for e in embs]  # (batch, d)
                target = labels[..., :d] if labels is not None and labels.shape[-1] == full else labels
            else:
                prefixes = [F.normalize(e[:, :d], dim=-1) for e in embs]  # (batch, d), unit rows
                target = labels
            total = total + w * self.inner.from_embeddings(prefixes, target)
        return total


def _inner_loss(model: nn.Module, inner: str | nn.Module, params: dict[str, Any]) -> _Loss:
    """The loss MatryoshkaLoss applies at each size, made from its name or checked as given."""
    wrappable = (MultipleNegativesRankingLoss, CoSENTLoss, MSELoss)
    names = ", ".join(c.__name__ for c in wrappable)
    if isinstance(inner, str):
        classes = {c.__name__: c for c in wrappable}
        if inner not in classes:
            raise ValueError(f"inner: MatryoshkaLoss wraps {names}; got {inner!r}")
        signature = inspect.signature(classes[inner]).parameters
        for key in params:
            if key not in signature or key == "model":
                raise ValueError(f"{inner} takes no {key!r} (MatryoshkaLoss passes it the keys it does not take "
                                 f"itself: {', '.join(k for k in signature if k != 'model') or 'none'})")
        return classes[inner](model, **params)
    if params:
        raise ValueError(f"give the inner loss's hyper-parameters to the loss itself, not to MatryoshkaLoss: {', '.join(params)}")
    if type(inner) not in wrappable:
        raise ValueError(f"inner: MatryoshkaLoss wraps {names}; got {type(inner).__name__}")
    if inner.model is not model:
        raise ValueError("the inner loss must hold the same model as MatryoshkaLoss")
    return inner
