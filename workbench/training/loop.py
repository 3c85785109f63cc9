"""One plain training loop that emits events.

Read it top to bottom: tokenize once, plan the batches, then for each step pad a batch, compute
the loss, check it is finite, step AdamW under a warmup/decay schedule, and at fixed points
emit ``Step``/``Eval``/``Checkpoint`` events. Mixed precision and several GPUs come from
``accelerate``; only the main process writes files and emits events.

Several processes (``torchrun --nproc_per_node N -m workbench.cli train recipe.toml``): each
takes its share of every batch (so the global batch is ``batch_size``), gradients are averaged
by DDP, the logged loss is the mean over processes, and in-batch negatives (MNRL) come from a
process's own share only. The main process evaluates while the others wait at a barrier.

Example:
    >>> events = []                                                              # doctest: +SKIP
    >>> Trainer(model, loss, TrainConfig(max_steps=50), data, evaluator,
    ...         callbacks=[events.append]).fit()                                  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import random
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workbench.training.batching import TokenizedData
from workbench.training.config import TrainConfig
from workbench.training.events import Checkpoint, Done, Eval, Event, RunHistory, Started, Step
from workbench.training.runs import RunDir


class TrainingError(RuntimeError):
    """Training cannot go on (a non-finite loss, out of memory); the message says what to do."""


class Trainer:
    """Trains an embedding model with a loss module on rows of texts.

    Args:
        model: the ``EmbeddingModel`` to train (changed in place).
        loss: a loss module from ``workbench.losses`` holding the same model.
        config: the hyper-parameters.
        train_data: rows with text columns (and a ``label``/``score`` column where the loss needs one).
        evaluator: called with the model every ``eval_every`` steps; returns flat metrics and has
            ``primary_metric`` (e.g. STS-B dev). ``None`` trains without evaluation.
        run_dir: where ``config.json``, ``metrics.jsonl``, checkpoints and the final model go;
            ``None`` writes nothing.
        callbacks: functions receiving every event.
        run_info: extra facts for ``config.json`` and the model card (recipe, data, base model).
        card: a function ``(model, history, trainer) -> str`` writing the final model card.
        stop_signal: an event that, once set (from any thread), ends the run after the current
            step, as :meth:`stop` does; lets a caller that never sees the trainer stop it.
    """

    def __init__(
        self,
        model: Any,
        loss: torch.nn.Module,
        config: TrainConfig,
        train_data: Any,
        evaluator: Callable[[Any], dict[str, float]] | None = None,
        run_dir: str | Path | None = None,
        callbacks: Sequence[Callable[[Event], None]] = (),
        run_info: dict[str, Any] | None = None,
        card: Callable[..., str] | None = None,
        stop_signal: threading.Event | None = None,
    ):
        self.model = model
        self.loss = loss
        self.config = config
        self.train_data = train_data
        self.evaluator = evaluator
        self.run = RunDir(run_dir) if run_dir is not None else None
        self.callbacks = list(callbacks)
        self.run_info = dict(run_info or {})
        self.card = card
        self._stop = stop_signal if stop_signal is not None else threading.Event()
        self._failed_callbacks: set[int] = set()
        self.final_metrics: dict[str, float] = {}  # the last evaluation (plus what the card writer adds)
        self.best_value: float | None = None
        self.best_step: int | None = None
        self.step = 0

    # ----- control ---------------------------------------------------------------------------
    def stop(self) -> None:
        """End the run after the current step, keeping what was learned. Safe from any thread."""
        self._stop.set()

    def _emit(self, event: Event) -> None:
        if self.run is not None:
            self.run.log(event)
        for cb in self.callbacks:
            try:
                cb(event)
            except Exception as err:  # a broken plot must not end a long run
                if id(cb) not in self._failed_callbacks:
                    self._failed_callbacks.add(id(cb))
                    warnings.warn(f"training callback {cb!r} failed and is ignored from now on: {err!r}", stacklevel=2)

    # ----- the loop ----------------------------------------------------------------------------
    def fit(self, resume: bool = False) -> Any:
        """Train; returns the model (with the best weights when ``keep_best``).

        Args:
            resume: continue from the latest checkpoint in ``run_dir``.
        """
        with _RUNNING:
            return self._fit(resume)

    def _fit(self, resume: bool) -> Any:
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        cfg = self.config
        _seed_everything(cfg.seed)
        device = self.model.device
        precision = cfg.mixed_precision
        if precision == "fp16" and device.type != "cuda":
            # accelerate would silently train in fp32; say so, and record what really happens.
            warnings.warn("mixed_precision='fp16' needs a CUDA GPU; training in fp32 on " + device.type, stacklevel=2)
            precision = "no"
        self.run_info.setdefault("precision_used", precision)
        # Under DDP: a Hugging Face transformer's own pooler (BERT's) never reaches the sentence
        # embedding, and DDP stops at the second step unless it is told to expect unused parameters.
        ddp = DistributedDataParallelKwargs(find_unused_parameters=True)
        _forget_accelerate_state(precision, device.type == "cpu")
        acc = Accelerator(mixed_precision=precision, cpu=device.type == "cpu", kwargs_handlers=[ddp])
        if self.run is not None and acc.num_processes > 1:
            self.run = RunDir(_from_main(acc, str(self.run.path)))  # one run folder, the main process's
        datasets = _named_datasets(self.train_data)
        data = [TokenizedData(d, self.model.tokenizer, self.model.max_seq_length) for d in datasets.values()]
        plan = _Plan(data, cfg, acc.num_processes)
        total = plan.total_steps
        warmup = math.ceil(total * cfg.warmup_ratio)

        optimizer = torch.optim.AdamW(_param_groups(self.model, cfg.weight_decay), lr=cfg.lr)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _linear_schedule(s, warmup, total))
        model, optimizer = acc.prepare(self.model, optimizer)
        # The loss embeds through the (possibly DDP-wrapped) model, so gradients are averaged as they
        # are computed. A loss whose backward re-runs the model (GradCache) cannot go through DDP's
        # hooks: it gets the bare model, and the gradients are averaged after the backward pass.
        sync_after_backward = acc.num_processes > 1 and _replays_forward_in_backward(self.loss)
        self.loss.model = acc.unwrap_model(model) if sync_after_backward else model
        main = acc.is_main_process

        start = 0
        if resume:
            if self.run is None:
                raise ValueError("resume=True needs a run_dir holding checkpoints")
            start = self._restore(acc, optimizer, scheduler)
        elif self.run is not None and main:
            self.run.start({"train": cfg.to_dict(), "loss": _loss_config(self.loss), **self.run_info})
        self.step = start

        if main:
            self._emit(Started(total_steps=total, examples=sum(len(d) for d in data), batch_size=cfg.batch_size, start_step=start,
                               run_dir=str(self.run.path) if self.run else None))
        t0 = time.perf_counter()
        window_loss, window_n, window_examples, window_t = 0.0, 0, 0, time.perf_counter()
        reason = "completed"
        try:
            if start == 0 and cfg.eval_at_start:
                self._evaluate(acc, 0, plan)
            model.train()
            for step in range(start + 1, total + 1):
                # The RNG before this step's dropout: a checkpoint written if the step fails or is
                # interrupted must replay it with the same masks.
                self._rng_before_step = _rng_state() if self.run is not None else None
                source, rows = plan.rows(step, acc.process_index, acc.num_processes)
                features, labels = data[source].batch(rows, acc.device)
                try:
                    loss = self.loss(features, labels)
                    # The mean over processes: every process sees the same value, so a NaN on one stops all.
                    value = _mean_over_processes(acc, loss.detach())
                    if not math.isfinite(value):
                        raise TrainingError(self._nan_message(step, scheduler.get_last_lr()[0]))
                    acc.backward(loss)
                    if sync_after_backward:
                        _average_gradients(acc, model)
                except torch.cuda.OutOfMemoryError:
                    optimizer.zero_grad(set_to_none=True)
                    raise TrainingError(
                        f"out of GPU memory at step {step} with batch_size={cfg.batch_size}. Use a smaller batch_size, "
                        "or CachedMultipleNegativesRankingLoss (same effective batch, little memory: [loss] name = "
                        "'CachedMultipleNegativesRankingLoss', mini_batch_size = 32), or a shorter max_seq_length."
                    ) from None
                # Clipping (a no-op with max_grad_norm 0 -> inf) also gives the gradient norm: a NaN/inf
                # gradient with a finite loss must not reach the weights either.
                norm = acc.clip_grad_norm_(model.parameters(), cfg.max_grad_norm if cfg.max_grad_norm > 0 else float("inf"))
                if norm is not None and not math.isfinite(float(norm)):
                    optimizer.zero_grad(set_to_none=True)
                    raise TrainingError(self._nan_message(step, scheduler.get_last_lr()[0]).replace(
                        "the loss became non-finite", "the gradients became non-finite"))
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                self.step = step
                self._rng_before_step = None
                window_loss += value
                window_n += 1
                window_examples += len(rows) * acc.num_processes

                if main and (step % max(cfg.log_every, 1) == 0 or step == total):
                    now = time.perf_counter()
                    self._emit(Step(step=step, epoch=plan.epoch_of(step), loss=window_loss / window_n,
                                    lr=scheduler.get_last_lr()[0], examples_per_s=window_examples / max(now - window_t, 1e-9),
                                    elapsed_s=now - t0, total_steps=total))
                    window_loss, window_n, window_examples, window_t = 0.0, 0, 0, time.perf_counter()
                if cfg.eval_every and step % cfg.eval_every == 0 and step != total:
                    self._evaluate(acc, step, plan)
                    model.train()
                if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step != total:
                    self._checkpoint(acc, optimizer, scheduler, step)
                if _any_process(acc, self._stop.is_set()):  # all processes stop at the same step
                    reason = "stopped"
                    break
        except TrainingError as err:
            if self.run is not None:  # the weights before the bad step
                self._checkpoint(acc, optimizer, scheduler, self.step, all_processes=False)
            if main:
                self._emit(Done(step=self.step, reason="failed", elapsed_s=time.perf_counter() - t0,
                                best_step=self.best_step, best_value=self.best_value, error=str(err)))
            raise
        except KeyboardInterrupt:
            if self.run is not None:
                self._checkpoint(acc, optimizer, scheduler, self.step, all_processes=False)
            if main:
                self._emit(Done(step=self.step, reason="interrupted", elapsed_s=time.perf_counter() - t0,
                                best_step=self.best_step, best_value=self.best_value))
            raise

        model.eval()
        last_eval = self._last_eval_step
        if self.evaluator is not None and last_eval != self.step:
            self._evaluate(acc, self.step, plan)
        acc.wait_for_everyone()
        self.model = acc.unwrap_model(model)
        self.loss.model = self.model
        if cfg.keep_best and self.run is not None and self.best_step is not None and self.best_step != self._final_eval_step:
            self._load_weights(self.run.best_path)
        self.elapsed_s = time.perf_counter() - t0
        model_path = None
        if self.run is not None and main:
            model_path = str(self._save_final())
        if main:  # Done is on disk before the checkpoints go: a kill while deleting them loses nothing
            self._emit(Done(step=self.step, reason=reason, elapsed_s=time.perf_counter() - t0,
                            best_step=self.best_step, best_value=self.best_value, model_path=model_path))
        if self.run is not None and main:
            self.run.clear_checkpoints()
        acc.wait_for_everyone()  # every process returns once the run folder is complete
        return self.model

    # ----- evaluation, checkpoints -----------------------------------------------------------
    _last_eval_step: int | None = None
    _final_eval_step: int | None = None

    def _evaluate(self, acc: Any, step: int, plan: _Plan) -> None:
        if self.evaluator is None:
            return
        self._last_eval_step = step
        self._final_eval_step = step
        if not acc.is_main_process:
            acc.wait_for_everyone()
            self.best_value, self.best_step = _from_main(acc, None)
            return
        metrics = {k: float(v) for k, v in self.evaluator(acc.unwrap_model(self.model)).items()}
        primary = getattr(self.evaluator, "primary_metric", None)
        value = metrics.get(primary) if primary else None
        is_best = value is not None and math.isfinite(value) and (self.best_value is None or value > self.best_value)
        if is_best:
            self.best_value, self.best_step = value, step
            if self.run is not None and self.config.keep_best:
                acc.unwrap_model(self.model).save(self.run.best_path)
        self.final_metrics = dict(metrics)
        self._emit(Eval(step=step, epoch=plan.epoch_of(step), metrics=metrics, primary=primary, value=value, is_best=is_best))
        acc.wait_for_everyone()
        _from_main(acc, (self.best_value, self.best_step))  # so every process loads the same best weights

    def _checkpoint(self, acc: Any, optimizer: Any, scheduler: Any, step: int, all_processes: bool = True) -> None:
        """Save a resumable checkpoint (main process). ``all_processes``: every process is here
        (not so after an error on one), so each one's RNG state is gathered: their dropout
        streams differ, and an exact resume needs them all."""
        if self.run is None:
            return
        if not all_processes and self.run.has_checkpoint(step):
            return  # the good checkpoint of this step, written when it completed, stays as it is
        pending = getattr(self, "_rng_before_step", None)
        rng = pending if (pending is not None and not all_processes) else _rng_state()
        per_process = None
        if all_processes and acc.num_processes > 1:
            from accelerate.utils import gather_object

            per_process = gather_object([rng])  # in process order
        if not acc.is_main_process:
            return
        state = {
            "step": step,
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": rng,
            "rng_per_process": per_process,
            "best_value": self.best_value,
            "best_step": self.best_step,
            "last_eval_step": self._last_eval_step,
        }
        path = self.run.save_checkpoint(step, acc.unwrap_model(self.model), state, self.config.keep_checkpoints)
        self._emit(Checkpoint(step=step, path=str(path)))

    def _restore(self, acc: Any, optimizer: Any, scheduler: Any) -> int:
        if acc.is_main_process:
            self.run.remove_leftovers()
        found = self.run.latest_checkpoint()
        if found is None:
            ended = RunHistory.from_jsonl(self.run.metrics_path).done if self.run.metrics_path.exists() else None
            if ended is not None and ended.reason == "completed":
                raise FileNotFoundError(f"the run in {self.run.path} already completed (its model is in "
                                        f"{self.run.model_path}); there is nothing to resume: start a new run")
            raise FileNotFoundError(f"no checkpoint to resume from in {self.run.path / 'checkpoints'}")
        model_dir, state = found
        self._load_weights(model_dir)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        per_process = state.get("rng_per_process")
        own = per_process is not None and len(per_process) == acc.num_processes
        _set_rng_state(per_process[acc.process_index] if own else state["rng"])
        self.best_value, self.best_step = state["best_value"], state["best_step"]
        self._last_eval_step = self._final_eval_step = state.get("last_eval_step")
        if acc.is_main_process:
            self.run.truncate_log(state["step"])
        return int(state["step"])

    def _load_weights(self, folder: Path) -> None:
        from workbench.models import load_model

        saved = load_model(folder, device="cpu")
        target = self.model.module if hasattr(self.model, "module") else self.model
        target.load_state_dict(saved.state_dict())

    def _save_final(self) -> Path:
        card = None
        if self.card is not None:
            card = self.card(self.model, RunHistory.from_jsonl(self.run.metrics_path), self)
        return self.model.save(self.run.model_path, card=card)

    def _nan_message(self, step: int, lr: float) -> str:
        last = self.run.latest_checkpoint_path() if self.run is not None else None
        where = f"; the last good checkpoint is {last}" if last else ""
        return (
            f"the loss became non-finite (NaN or inf) at step {step} (learning rate {lr:.3g}); the weights before this "
            f"step are kept{where}. Try a lower learning rate, a longer warmup, or mixed_precision='bf16' instead of 'fp16'."
        )


class _Plan:
    """Which rows each step trains on, fixed in advance by the seed (so resuming replays them).

    With several data sets, an epoch is one pass over all of them; each batch comes from one
    data set (its columns may differ from the others'), and the batches of all sets are
    shuffled together, so each set is seen in proportion to its size. With ``world`` processes,
    a batch of fewer than ``world`` rows (a last, partial one) is dropped: each process needs a row.
    """

    def __init__(self, data: list[TokenizedData], cfg: TrainConfig, world: int = 1):
        self.data, self.cfg, self.world = data, cfg, world
        self._epochs: list[list[tuple[int, list[int]]]] = []
        per_epoch = len(self._epoch(0))
        if per_epoch == 0:
            raise ValueError(f"no full batch of {cfg.batch_size} rows in the training data (drop_last=True)")
        self.total_steps = cfg.max_steps if cfg.max_steps is not None else cfg.epochs * per_epoch
        self.per_epoch = per_epoch

    def _epoch(self, e: int) -> list[tuple[int, list[int]]]:
        while len(self._epochs) <= e:
            n, c = len(self._epochs), self.cfg
            batches = [(i, b) for i, d in enumerate(self.data)
                       for b in d.epoch_batches(n, c.batch_size, c.seed + 7919 * i, c.no_duplicates, c.drop_last)
                       if len(b) >= self.world]
            if len(self.data) > 1:
                gen = torch.Generator().manual_seed(c.seed * 100_003 + n + 1)
                batches = [batches[j] for j in torch.randperm(len(batches), generator=gen).tolist()]
            self._epochs.append(batches)
        return self._epochs[e]

    def _locate(self, step: int) -> tuple[int, int]:
        e, i = 0, step - 1
        while i >= len(self._epoch(e)):
            i -= len(self._epoch(e))
            e += 1
        return e, i

    def rows(self, step: int, rank: int = 0, world: int = 1) -> tuple[int, list[int]]:
        """(data set index, rows) of a step; with several processes each takes its share of the batch."""
        e, i = self._locate(step)
        source, batch = self._epoch(e)[i]
        return source, (batch[rank::world] if world > 1 else batch)

    def epoch_of(self, step: int) -> float:
        if step == 0:
            return 0.0
        e, i = self._locate(step)
        return round(e + (i + 1) / len(self._epoch(e)), 4)


def _named_datasets(train_data: Any) -> dict[str, Any]:
    """One data set, or several as ``{name: data}`` (e.g. caption pairs and NLI triplets).

    A dict whose values are data sets (a ``datasets.Dataset``, a dict of columns or a list of
    row dicts) holds several; any other dict is one data set's columns.
    """

    def is_dataset(v: Any) -> bool:
        return hasattr(v, "column_names") or isinstance(v, dict) or (isinstance(v, list) and bool(v) and isinstance(v[0], dict))

    if isinstance(train_data, dict) and train_data and all(is_dataset(v) for v in train_data.values()):
        return dict(train_data)
    return {"train": train_data}


def _mean_over_processes(acc: Any, value: torch.Tensor) -> float:
    """A scalar averaged over all processes (itself with one process)."""
    if acc.num_processes == 1:
        return float(value)
    return float(acc.reduce(value.float().reshape(1), reduction="mean"))


def _any_process(acc: Any, flag: bool) -> bool:
    """True on every process when it is true on any (a stop asked for on one must end all)."""
    if acc.num_processes == 1:
        return flag
    return bool(acc.reduce(torch.tensor([float(flag)], device=acc.device), reduction="sum") > 0)


def _replays_forward_in_backward(loss: Any) -> bool:
    from workbench.losses import CachedMultipleNegativesRankingLoss

    return isinstance(loss, CachedMultipleNegativesRankingLoss)


def _average_gradients(acc: Any, model: torch.nn.Module) -> None:
    """Average the gradients over processes in one all-reduce (what DDP does during the backward pass)."""
    import torch.distributed as dist

    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])  # (n_params,)
    dist.all_reduce(flat)
    flat /= acc.num_processes
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()



class _Running:
    """How many trainings are going in this process (two dashboards can train at once in one kernel)."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __enter__(self) -> _Running:
        with self._lock:
            self.count += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        with self._lock:
            self.count -= 1


_RUNNING = _Running()


def _forget_accelerate_state(precision: str, cpu: bool) -> None:
    """Let the next Accelerator take new settings, in a process that is not one of several.

    accelerate keeps one state per process and refuses a second Accelerator with another
    ``mixed_precision`` (or a CPU one after a GPU one), telling the user to restart the runtime:
    in a notebook, the second run after a precision change would fail. One process has nothing
    to coordinate, so its state is dropped before each run; under torchrun / accelerate launch
    (several processes) it is kept, and every run there comes from the same recipe. It is also
    kept while another training in this process is using it, and a run that needs other
    settings is refused with a plain message (accelerate's would say to restart the runtime).
    """
    from accelerate.state import AcceleratorState, PartialState

    if _RUNNING.count > 1:
        state = AcceleratorState._shared_state
        if state and (state.get("_mixed_precision") != precision or (state["device"].type == "cpu") != cpu):
            theirs = f"mixed_precision={state.get('_mixed_precision')!r} on {state['device'].type}"
            raise RuntimeError(f"another training in this process is running with {theirs}; this one needs "
                               f"mixed_precision={precision!r} on {'cpu' if cpu else 'the GPU'}: wait for it to "
                               "finish (or Stop it), or use the same settings")
        return
    if PartialState._shared_state and PartialState().num_processes > 1:
        return
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return
    AcceleratorState._reset_state(reset_partial_state=True)  # accelerate's own tests reset it this way


def _from_main(acc: Any, obj: Any) -> Any:
    """The main process's ``obj`` on every process (a picklable value)."""
    if acc.num_processes == 1:
        return obj
    from accelerate.utils import broadcast_object_list

    return broadcast_object_list([obj], from_process=0)[0]


def _linear_schedule(step: int, warmup: int, total: int) -> float:
    """Linear warmup from 0, then linear decay to 0 (the schedule sentence-transformers' trainer uses)."""
    if step < warmup:
        return step / max(1, warmup)
    return max(0.0, (total - step) / max(1, total - warmup))


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "LayerNorm" in name or "layer_norm" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def _loss_config(loss: Any) -> dict[str, Any]:
    return loss.config() if hasattr(loss, "config") else {"name": type(loss).__name__}


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict[str, Any]:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    # Plain lists and tensors only, so the checkpoint loads with torch.load(weights_only=True).
    state = {
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
        "numpy": [kind, keys.tolist(), pos, has_gauss, gauss],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
