"""A recipe as a tree of frozen, typed sections.

Each TOML section is a frozen dataclass whose type hints are checked when it is made, so a
misspelt key or a wrongly typed value fails while the file is read, before any model or data
is loaded, with one line naming the file, the section and the key. Everything that changes a
recipe (``--set``, the dashboard's controls, the quickstart, a notebook) does so by replacing
fields: :meth:`Recipe.with_` takes plain values and checks them the same way.

Example:
    >>> recipe = load_recipe("offline-b-mnrl-minilm")
    >>> recipe.train.lr, recipe.loss.params["scale"]
    (5e-05, 20.0)
    >>> faster = recipe.with_(train={"lr": 1e-4, "max_steps": 100}, loss={"scale": 10.0})
    >>> faster.train.lr, faster.train.max_steps, faster.loss.params["scale"], recipe.train.lr
    (0.0001, 100, 10.0, 5e-05)
    >>> recipe.with_(eval={"sts_tset": False})
    Traceback (most recent call last):
    ...
    workbench.recipes.sections.RecipeError: ...offline-b-mnrl-minilm.toml [eval]: unknown key 'sts_tset' (did you mean 'sts_test'?)
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import json
import os
import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench.fields import ValueTypeError, check_fields, check_value, from_mapping, unknown_key_message
from workbench.models.modules import POOLING_MODES
from workbench.training.config import TrainConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

RECIPES_DIR = Path(__file__).resolve().parents[2] / "recipes"
KINDS = ("train", "distill")


class RecipeError(ValueError):
    """A recipe that cannot run as written; the message names the file, section and key."""


# ----- [model] / [student] ---------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSpec:
    """The model to train (``[model]``), or the student (``[student]``) of a distillation.

    Exactly one of ``base`` (a name or folder whose transformer to start from), ``fresh`` (a
    BERT config table for random weights, with ``tokenizer``) or ``load`` (a finished model,
    taken as it is). A distillation student may name none of them: it is then a copy of the
    teacher, keeping ``keep_layers``.
    """

    base: str | None = None
    fresh: dict[str, Any] | None = None
    tokenizer: str | None = None  # whose vocabulary a fresh model uses
    load: str | None = None
    keep_layers: tuple[int, ...] | None = None
    pooling: str | None = None  # None: mean for a new model, the teacher's for a copy of it
    dense: int | None = None  # add Dense(dim -> dense)
    activation: str | None = None  # the Dense layer's activation; None: build_model's default
    normalize: bool | None = None  # None: none for a new model, the teacher's for a copy of it
    max_seq_length: int | None = None
    seed: int | None = None  # seeds every new random weight; None: the recipe's [train] seed
    # A static model. In a distillation's [student]: the teacher's vocabulary distilled into a table.
    # In a train recipe's [model], with tokenizer and dim: a fresh random table over that vocabulary.
    static: bool = False
    dim: int | None = None  # a fresh static table's vector size
    pca_dims: int | None = None  # None: keep the teacher's space (what MSE training against it needs)
    sif_coefficient: float | None = None  # None: workbench.static.SIF_COEFFICIENT
    frequencies: str | None = None  # "data": count token frequencies on the training sentences; "zipf"

    def __post_init__(self) -> None:
        check_fields(self)
        static_keys = ("pca_dims", "sif_coefficient", "frequencies")
        if self.static and self.tokenizer is not None:  # a fresh static table
            mixed = [k for k in static_keys if getattr(self, k) is not None]
            if mixed:
                raise ValueError(f"tokenizer and dim make a fresh static table; {', '.join(mixed)} belong to a static "
                                 "student distilled from a teacher: keep one or the other")
            extra = [f.name for f in dataclasses.fields(self)
                     if f.name not in ("static", "tokenizer", "dim", "normalize", "seed")
                     and getattr(self, f.name) != f.default]
            if extra:
                raise ValueError(f"a fresh static model is a random table over the tokenizer's vocabulary; remove "
                                 f"{', '.join(extra)} (it takes tokenizer, dim, normalize, seed)")
            if self.dim is None or self.dim < 1:
                raise ValueError(f"a fresh static model needs dim = <vector size, >= 1> (got {self.dim})")
            return
        if self.dim is not None:
            raise ValueError("dim applies to a fresh static model only (static = true with tokenizer = '...')")
        if self.static:
            extra = [f.name for f in dataclasses.fields(self)
                     if f.name not in ("static", *static_keys) and getattr(self, f.name) != f.default]
            if extra:
                raise ValueError(f"a static student is distilled from the teacher's vocabulary; remove {', '.join(extra)} "
                                 f"(it takes {', '.join(static_keys)})")
            if self.frequencies not in (None, "data", "zipf"):
                raise ValueError(f"frequencies = {self.frequencies!r}: choose 'data' (count on the training sentences) "
                                 "or 'zipf' (assume the vocabulary's order)")
            if self.pca_dims is not None and self.pca_dims < 1:
                raise ValueError(f"pca_dims must be >= 1 (got {self.pca_dims})")
            if self.sif_coefficient is not None and not self.sif_coefficient > 0:
                raise ValueError(f"sif_coefficient must be > 0 (got {self.sif_coefficient})")
            return
        given = [k for k in static_keys if getattr(self, k) is not None]
        if given:
            raise ValueError(f"{', '.join(given)} apply to a static student only (static = true)")
        chosen = [k for k in ("base", "fresh", "load") if getattr(self, k) is not None]
        if len(chosen) > 1:
            raise ValueError(f"give one of base, fresh or load, not {' and '.join(chosen)}")
        if self.fresh is not None and self.tokenizer is None:
            raise ValueError("fresh = {...} needs tokenizer = 'a model whose vocabulary to use'")
        if self.tokenizer is not None and self.fresh is None:
            raise ValueError("tokenizer applies only to a fresh model (fresh = {...}, or static = true with dim)")
        if self.load is not None:
            extra = [f.name for f in dataclasses.fields(self) if f.name not in ("load", "max_seq_length", "seed")
                     and getattr(self, f.name) != f.default]
            if extra:
                raise ValueError(f"load takes a finished model as it is (only max_seq_length applies); "
                                 f"remove {', '.join(extra)}")
        if self.pooling is not None and self.pooling not in POOLING_MODES:
            raise ValueError(f"pooling: unknown mode {self.pooling!r}; choose from {', '.join(POOLING_MODES)}")
        for name in ("dense", "max_seq_length"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 (got {value})")
        if self.keep_layers is not None and (not self.keep_layers or min(self.keep_layers) < 0):
            raise ValueError(f"keep_layers must list layer numbers >= 0 (got {list(self.keep_layers)})")

    @property
    def from_teacher(self) -> bool:
        """A distillation student that is a copy of the teacher (no base, fresh or load)."""
        return self.base is None and self.fresh is None and self.load is None and not self.fresh_static

    @property
    def fresh_static(self) -> bool:
        """A static model that starts from random vectors over ``tokenizer``'s vocabulary."""
        return self.static and self.tokenizer is not None

    def source(self) -> str | None:
        """The model this one starts from (for the card's base_model), if it names one."""
        return self.base or self.load


# ----- [teacher] -------------------------------------------------------------------------------
def _pca_sentences_default() -> int:
    from workbench.distill import PCA_SENTENCES

    return PCA_SENTENCES


@dataclass(frozen=True)
class TeacherSpec:
    """The teacher of a distillation; ``pca_sentences`` caps the sentences a PCA is fitted on
    (used only when the student is narrower than the teacher)."""

    model: str
    pca_sentences: int = field(default_factory=_pca_sentences_default)

    def __post_init__(self) -> None:
        check_fields(self)
        if self.pca_sentences < 1:
            raise ValueError(f"pca_sentences must be >= 1 (got {self.pca_sentences})")


# ----- [loss] ----------------------------------------------------------------------------------
def loss_classes() -> dict[str, type]:
    """The losses a recipe can name, by class name."""
    from workbench import losses

    return {c.__name__: c for c in (losses.MultipleNegativesRankingLoss, losses.CachedMultipleNegativesRankingLoss,
                                    losses.CoSENTLoss, losses.MSELoss, losses.MatryoshkaLoss)}


DEFAULT_LOSS = {"train": "MultipleNegativesRankingLoss", "distill": "MSELoss"}
# What a distillation trains towards: teacher embeddings as labels, which only these losses take.
DISTILL_LOSSES = ("MSELoss",)


def loss_parameters(name: str, inner: str | None = None) -> dict[str, inspect.Parameter]:
    """The hyper-parameters a loss class takes (its ``__init__`` less the model), with defaults.

    A loss that wraps another (``MatryoshkaLoss``: ``inner``, ``dims``, ``weights``) also takes
    its inner loss's, given beside its own (``scale = 20.0``); ``inner`` names that loss (by
    default the wrapper's default inner loss).
    """
    params = dict(inspect.signature(loss_classes()[name]).parameters)
    params.pop("model", None)
    wrapped = [k for k, p in params.items() if p.kind is inspect.Parameter.VAR_KEYWORD]
    for key in wrapped:
        del params[key]
    if wrapped:
        inner = inner if inner is not None else params["inner"].default
        if inner in loss_classes() and inner != name:
            params.update({k: p for k, p in loss_parameters(inner).items() if k not in params})
    return params


def _loss_hints(name: str, inner: str | None) -> dict[str, Any]:
    """The type hints of a loss's hyper-parameters, a wrapper's inner loss's included."""
    classes = loss_classes()
    hints = typing.get_type_hints(classes[name].__init__)
    if "inner" in hints:
        inner = inner if inner is not None else loss_parameters(name)["inner"].default
        if inner in classes and inner != name:
            hints = {**typing.get_type_hints(classes[inner].__init__), **hints}
    return hints


@dataclass(frozen=True)
class LossSpec:
    """A loss by class name and its hyper-parameters (the class's own keyword arguments; a
    value left out is the class's default, so each default lives in one place)."""

    name: str = DEFAULT_LOSS["train"]
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_fields(self)
        classes = loss_classes()
        if self.name not in classes:
            raise ValueError(f"name: unknown loss {self.name!r}; known: {', '.join(classes)}")
        inner = self.params.get("inner") if isinstance(self.params.get("inner"), str) else None
        signature = loss_parameters(self.name, inner)
        hints = _loss_hints(self.name, inner)
        checked = {}
        for key, value in self.params.items():
            if key not in signature:
                raise ValueError(f"{unknown_key_message(key, ['name', *signature])} for {self.name}")
            try:
                checked[key] = check_value(value, hints.get(key, Any))
            except ValueTypeError as err:
                raise ValueTypeError(f"{key}: {err}") from None
        object.__setattr__(self, "params", checked)
        # The loss checks its own values (a positive scale, a known similarity, ...) when it is made;
        # making it on a stand-in model now refuses a bad value before any model or data is loaded.
        from torch import nn

        classes[self.name](nn.Identity(), **checked)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], kind: str = "train") -> LossSpec:
        data = dict(data)
        return cls(name=data.pop("name", DEFAULT_LOSS[kind]), params=data)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, **{k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items()}}

    @property
    def base_name(self) -> str:
        """The loss that scores the embeddings: a wrapper's inner loss (MatryoshkaLoss's), else ``name``."""
        return self.value("inner") if self.takes("inner") else self.name

    def value(self, key: str) -> Any:
        """A hyper-parameter as the loss will use it: the recipe's value, else the class default."""
        if key in self.params:
            return self.params[key]
        return loss_parameters(self.name, self.params.get("inner"))[key].default

    def takes(self, key: str) -> bool:
        return key in loss_parameters(self.name, self.params.get("inner"))

    def build(self, model: Any) -> Any:
        return loss_classes()[self.name](model, **self.params)


# ----- [[data]] --------------------------------------------------------------------------------
def data_loaders() -> dict[str, Callable[..., Any]]:
    """The loaders a ``[[data]]`` entry can name (``hub`` is handled by :func:`load_data`)."""
    from workbench import data as wd

    return {"nli_triplets": wd.load_nli_triplets, "caption_pairs": wd.load_caption_pairs,
            "wikisplit_pairs": wd.load_wikisplit_pairs, "sentences": wd.load_sentences, "stsb": wd.load_stsb,
            "file": wd.load_file}


def _hub_loader(id: str, config: str | None = None, split: str = "train", columns: list[str] | None = None) -> None:
    """The arguments of a hub data set named exactly, as the seed cards do (the signature is the spec)."""


@dataclass(frozen=True)
class DataSpec:
    """One ``[[data]]`` entry: a loader, its own arguments, and an optional seeded cut to ``limit`` rows."""

    loader: str
    name: str | None = None
    limit: int | None = None
    seed: int = 0
    args: dict[str, Any] = field(default_factory=dict)  # the loader's own keyword arguments

    def __post_init__(self) -> None:
        check_fields(self)
        function = _hub_loader if self.loader == "hub" else data_loaders().get(self.loader)
        if function is None:
            raise ValueError(f"loader: unknown loader {self.loader!r}; known: {', '.join([*data_loaders(), 'hub'])}")
        params = {k: p for k, p in inspect.signature(function).parameters.items() if k not in ("limit", "seed")}
        hints = typing.get_type_hints(function)
        checked = {}
        for key, value in self.args.items():
            if key not in params:
                raise ValueError(f"{unknown_key_message(key, ['name', 'loader', 'limit', 'seed', *params])} "
                                 f"for loader {self.loader!r}")
            try:
                checked[key] = check_value(value, hints.get(key, Any))
            except ValueTypeError as err:
                raise ValueTypeError(f"{key}: {err}") from None
        missing = [k for k, p in params.items() if p.default is inspect.Parameter.empty and k not in checked]
        if missing:
            raise ValueError(f"loader {self.loader!r} needs {', '.join(missing)}")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"limit must be >= 1 (got {self.limit})")
        object.__setattr__(self, "args", checked)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DataSpec:
        data = dict(data)
        if "loader" not in data:
            raise ValueError("needs loader = '...' (e.g. caption_pairs, nli_triplets, sentences, file, hub)")
        own = {k: data.pop(k) for k in ("loader", "name", "limit", "seed") if k in data}
        return cls(**own, args=data)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"loader": self.loader}
        if self.name is not None:
            out["name"] = self.name
        if self.limit is not None:
            out["limit"] = self.limit
        out["seed"] = self.seed
        return {**out, **self.args}

    def with_(self, **changes: Any) -> DataSpec:
        own = {k: changes.pop(k) for k in ("loader", "name", "limit", "seed") if k in changes}
        return dataclasses.replace(self, **own, args={**self.args, **changes})

    @property
    def label(self) -> str:
        return self.name or self.loader


# ----- [eval] ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class EvalSpec:
    """What is evaluated: STS-B dev during training (the curve, and the primary metric), STS-B
    test once at the end, and for a distillation the MSE on ``mse_sentences`` held-out sentences.
    With ``caption_retrieval`` the final model is also scored on Multi30k test_2016 caption
    retrieval (:func:`workbench.retrieval.caption_retrieval`: 957 queries, 3,828 captions)."""

    sts_dev: bool = True
    sts_dev_limit: int | None = None  # the first this many STS-B dev pairs; None: all
    sts_test: bool = True
    mse_sentences: int = 1000  # distillation only: the first this many sentences are held out
    caption_retrieval: bool = False  # Multi30k test_2016 caption retrieval on the final model
    caption_retrieval_limit: int | None = None  # the first this many images; None: all 957

    def __post_init__(self) -> None:
        check_fields(self)
        if self.sts_dev_limit is not None and self.sts_dev_limit < 1:
            raise ValueError(f"sts_dev_limit must be >= 1 (got {self.sts_dev_limit})")
        if self.caption_retrieval_limit is not None and self.caption_retrieval_limit < 1:
            raise ValueError(f"caption_retrieval_limit must be >= 1 (got {self.caption_retrieval_limit})")
        if self.mse_sentences < 0:
            raise ValueError(f"mse_sentences must be >= 0 (got {self.mse_sentences})")


# ----- the recipe ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Recipe:
    """A parsed recipe: typed sections, each checked when made.

    Change one with :meth:`with_` (plain values, checked like the file's) or
    ``dataclasses.replace`` with whole sections; both return a new recipe.
    """

    name: str
    kind: str = "train"  # "train" or "distill"
    description: str = ""
    model: ModelSpec = field(default_factory=ModelSpec)  # the student when distilling
    teacher: TeacherSpec | None = None
    loss: LossSpec = field(default_factory=LossSpec)
    data: tuple[DataSpec, ...] = ()
    eval: EvalSpec = field(default_factory=EvalSpec)
    train: TrainConfig = field(default_factory=TrainConfig)
    path: str | None = None

    def __post_init__(self) -> None:
        where = self.path or self.name
        if self.kind not in KINDS:
            raise RecipeError(f"{where}: kind must be 'train' or 'distill', got {self.kind!r}")
        if self.kind == "distill":
            if self.model.fresh_static:
                raise RecipeError(f"{where} [student]: a static student is distilled from the teacher's vocabulary; "
                                  "remove tokenizer and dim")
            if self.teacher is None:
                raise RecipeError(f"{where}: a distill recipe needs a [teacher] section (model = '...')")
            if self.loss.base_name not in DISTILL_LOSSES:
                raise RecipeError(f"{where} [loss]: a distillation trains on teacher embeddings with "
                                  f"{' or '.join(DISTILL_LOSSES)}, not {self.loss.base_name}")
        else:
            if self.teacher is not None:
                raise RecipeError(f"{where} [teacher]: only a distill recipe has a teacher (kind = 'distill')")
            if self.loss.base_name in DISTILL_LOSSES:
                raise RecipeError(f"{where} [loss]: {self.loss.base_name} needs teacher embeddings: use kind = 'distill'")
            if self.model.static and not self.model.fresh_static:
                raise RecipeError(f"{where} [model]: a static model in a train recipe starts from random vectors: "
                                  "give tokenizer = 'a model whose vocabulary to use' and dim = <size>")
            if self.model.from_teacher:
                raise RecipeError(f"{where} [model]: needs base = 'name or folder', fresh = {{...}}, load = 'folder' "
                                  "or static = true with tokenizer and dim")
            if self.eval.mse_sentences != EvalSpec.mse_sentences:
                raise RecipeError(f"{where} [eval]: mse_sentences applies to distill recipes only")
        dims = self.loss.params.get("dims") or ()
        if self.model.dense is not None and dims and max(dims) > self.model.dense:
            raise RecipeError(f"{where} [loss]: dims {list(dims)}: {max(dims)} is more than the model's embedding dim "
                              f"(dense = {self.model.dense}); each size must be at most {self.model.dense}")
        if not self.data:
            raise RecipeError(f"{where}: no [[data]] entries")

    @property
    def model_section(self) -> str:
        return "student" if self.kind == "distill" else "model"

    # ----- changing a recipe ----------------------------------------------------------------
    def with_(self, **sections: Mapping[str, Any]) -> Recipe:
        """A new recipe with some fields changed: ``with_(train={"lr": 1e-4}, loss={"scale": 10.0})``.

        Keys are section names (``model``/``student``, ``teacher``, ``loss``, ``data``, ``eval``,
        ``train``); ``data={"limit": 100}`` changes every ``[[data]]`` entry, ``data={"snli-triplets.limit":
        100}`` only the entry of that name. Values are checked as the file's
        are, and an error names the section and the key.
        """
        where = self.path or self.name
        changes: dict[str, Any] = {}
        for section, values in sections.items():
            label = section
            if section == "student" or section == "model":
                section = "model"
                label = self.model_section
            if section not in ("model", "teacher", "loss", "data", "eval", "train"):
                raise RecipeError(f"{where}: {unknown_key_message(section, ['model', 'student', 'teacher', 'loss', 'data', 'eval', 'train'])}")
            try:
                changes[section] = self._changed(section, dict(values))
            except (TypeError, ValueError) as err:
                raise RecipeError(f"{where} [{label}]: {err}") from None
        return _checked(lambda: dataclasses.replace(self, **changes), where)

    def _changed(self, section: str, values: dict[str, Any]) -> Any:
        if section == "data":  # "limit" changes every entry, "snli-triplets.limit" the one so named
            every = {k: v for k, v in values.items() if "." not in k}
            named: dict[str, dict[str, Any]] = {}
            labels = [d.label for d in self.data]
            for key, value in values.items():
                if "." in key:
                    label, name = key.rsplit(".", 1)
                    if label not in labels:
                        raise ValueError(f"no [[data]] entry named {label!r} (entries: {', '.join(labels)})")
                    named.setdefault(label, {})[name] = value
            return tuple(d.with_(**{**every, **named.get(d.label, {})}) for d in self.data)
        if section == "loss":
            current = self.loss.to_dict()
            if values.get("name", self.loss.name) != self.loss.name:  # another loss keeps what it also takes
                takes = loss_parameters(values["name"], values.get("inner")) if values["name"] in loss_classes() else {}
                current = {k: v for k, v in current.items() if k in takes}
            return LossSpec.from_dict({**current, **values}, self.kind)
        if section == "teacher":
            current = dataclasses.asdict(self.teacher) if self.teacher is not None else {}
            return from_mapping(TeacherSpec, {**current, **values})
        current = getattr(self, section)
        return from_mapping(type(current), {**_fields(current), **values})

    def set(self, assignments: Sequence[str]) -> Recipe:
        """The recipe with ``section.key=value`` assignments (the CLI's ``--set``) applied.

        A value is read as TOML (``false``, ``1e-4``, ``[0, 3, 5]``, ``"text"``), else as a
        Python literal (``False``, ``None``), else as the text itself; its type is then checked
        like the file's values (``--set eval.sts_test=flase`` is refused).
        """
        grouped: dict[str, dict[str, Any]] = {}
        for item in assignments:
            key, sep, text = item.partition("=")
            if not sep or "." not in key:
                raise RecipeError(f"--set {item!r}: use section.key=value, e.g. train.lr=1e-4")
            section, name = key.strip().split(".", 1)
            grouped.setdefault(section.strip(), {})[name.strip()] = _assigned_value(text.strip())
        try:
            return self.with_(**grouped)
        except RecipeError as err:  # say that the value came from --set, not from the file
            where = self.path or self.name
            raise RecipeError(str(err).replace(where, f"{where} --set", 1)) from None

    # ----- saving -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The recipe as its TOML file would hold it, every value resolved (for ``config.json``)."""
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "description": self.description,
                               self.model_section: _fields(self.model)}
        if self.teacher is not None:
            out["teacher"] = dataclasses.asdict(self.teacher)
        out["loss"] = self.loss.to_dict()
        out["data"] = [d.to_dict() for d in self.data]
        out["eval"] = dataclasses.asdict(self.eval)
        out["train"] = self.train.to_dict()
        return out

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], path: str | None = None, name: str | None = None) -> Recipe:
        """A recipe from a parsed TOML table; ``path`` and ``name`` only label errors and the result."""
        where = path or name or "recipe"
        known = ("name", "kind", "description", "model", "student", "teacher", "loss", "data", "eval", "train")
        for key in raw:
            if key not in known:
                raise RecipeError(f"{where}: unknown section [{key}] ({unknown_key_message(key, known).split(' (', 1)[1]}")
        kind = raw.get("kind", "train")
        if kind not in KINDS:
            raise RecipeError(f"{where}: kind must be 'train' or 'distill', got {kind!r}")
        model_section = "student" if kind == "distill" else "model"
        other = "model" if kind == "distill" else "student"
        if other in raw:
            raise RecipeError(f"{where}: a {kind} recipe describes its model in [{model_section}], not [{other}]")
        for key in ("name", "description"):
            if key in raw and not isinstance(raw[key], str):
                raise RecipeError(f"{where}: {key} must be text, got {raw[key]!r}")

        def section(label: str, make: Callable[[], Any]) -> Any:
            try:
                return make()
            except (TypeError, ValueError) as err:
                raise RecipeError(f"{where} [{label}]: {err}") from None

        data = raw.get("data", [])
        if not isinstance(data, list):
            raise RecipeError(f"{where}: data must be [[data]] entries (a list of tables)")
        return _checked(lambda: cls(
            name=raw.get("name", name or "recipe"),
            kind=kind,
            description=raw.get("description", ""),
            model=section(model_section, lambda: from_mapping(ModelSpec, raw.get(model_section, {}))),
            teacher=section("teacher", lambda: from_mapping(TeacherSpec, raw["teacher"])) if "teacher" in raw else None,
            loss=section("loss", lambda: LossSpec.from_dict(raw.get("loss", {}), kind)),
            data=tuple(section(f"data {i + 1}", lambda d=d: DataSpec.from_dict(d)) for i, d in enumerate(data)),
            eval=section("eval", lambda: from_mapping(EvalSpec, raw.get("eval", {}))),
            train=section("train", lambda: TrainConfig.from_dict(raw.get("train", {}))),
            path=path,
        ), where)


def _checked(make: Callable[[], Recipe], where: str) -> Recipe:
    try:
        return make()
    except RecipeError:
        raise
    except (TypeError, ValueError) as err:
        raise RecipeError(f"{where}: {err}") from None


def _fields(obj: Any) -> dict[str, Any]:
    """A section's fields as plain values (tuples as lists, as TOML and JSON hold them)."""
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def assigned_text(value: Any) -> str:
    """A value written as ``--set key=VALUE`` reads it back (TOML): the inverse of what ``--set`` parses.

    Example:
        >>> [assigned_text(v) for v in ("mean", 1e-4, 20, True, [0, 3, 5])]
        ['"mean"', '0.0001', '20', 'true', '[0,3,5]']
        >>> all(_assigned_value(assigned_text(v)) == v for v in ("a b", 2e-5, False, [1, 2], {"k": 1}))
        True
    """
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":")) if isinstance(value, (list, dict)) else repr(value)


def _assigned_value(text: str) -> Any:
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare string; its field's type decides whether that is allowed


# ----- files -----------------------------------------------------------------------------------
def find_recipe(name_or_path: str | os.PathLike[str]) -> Path:
    """A recipe file by path, or by name in ``./recipes`` or the project's ``recipes/`` folder."""
    path = Path(name_or_path)
    candidates = [path, path.with_suffix(".toml"), Path("recipes") / f"{path.name}.toml", RECIPES_DIR / f"{path.name}.toml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    known = sorted(p.stem for p in RECIPES_DIR.glob("*.toml")) if RECIPES_DIR.is_dir() else []
    raise FileNotFoundError(f"no recipe {name_or_path!r} (known: {', '.join(known) or 'none found'})")


def load_recipe(name_or_path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> Recipe:
    """Read and check a recipe file; ``overrides`` are ``--set`` assignments (``train.lr=1e-4``).

    Every section is checked here, before anything is loaded: an unknown key or a wrongly typed
    value raises :class:`RecipeError` naming the file, the section and the key.
    """
    path = find_recipe(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise RecipeError(f"{path}: not valid TOML: {err}") from None
    recipe = Recipe.from_dict(raw, path=str(path), name=path.stem)
    return recipe.set(overrides) if overrides else recipe
