"""Recipes: one small TOML file describes a whole training or distillation run.

A recipe has the sections ``[model]`` (or ``[student]`` and ``[teacher]`` for distillation),
``[loss]``, ``[[data]]`` (one or more data sets), ``[eval]`` and ``[train]``. Each is a frozen,
typed dataclass (:mod:`workbench.recipes.sections`), checked when the file is read; a recipe is
changed by replacing fields (:meth:`Recipe.with_`), and :func:`run_recipe` runs it
(:mod:`workbench.recipes.run`).

Example:
    >>> from workbench.recipes import load_recipe
    >>> recipe = load_recipe("offline-a-distill", ["train.max_steps=50"])
    >>> recipe.kind, recipe.teacher.model, recipe.model.keep_layers, recipe.train.max_steps
    ('distill', 'all-MiniLM-L6-v2', (0, 2, 4, 5), 50)
"""

from __future__ import annotations

from workbench.recipes.run import (
    RecipeResult,
    build_from_spec,
    load_data,
    planned_steps,
    recipe_card,
    recipe_summary,
    run_recipe,
)
from workbench.recipes.sections import (
    DEFAULT_LOSS,
    RECIPES_DIR,
    DataSpec,
    EvalSpec,
    LossSpec,
    ModelSpec,
    Recipe,
    RecipeError,
    TeacherSpec,
    assigned_text,
    find_recipe,
    load_recipe,
)

__all__ = [
    "DEFAULT_LOSS", "RECIPES_DIR", "DataSpec", "EvalSpec", "LossSpec", "ModelSpec", "Recipe", "RecipeError",
    "RecipeResult", "TeacherSpec", "assigned_text", "build_from_spec", "find_recipe", "load_data", "load_recipe", "planned_steps", "recipe_card",
    "recipe_summary", "run_recipe",
]
