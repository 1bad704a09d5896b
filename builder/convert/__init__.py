"""Conversion recipes, looked up by the manifest's ``conversion.recipe`` name.

Recipe modules import their heavy tools (torch, optimum, onnx) inside functions: importing this package is
cheap, so checking that the cache is up to date needs none of them.
"""

from __future__ import annotations

from builder.common import BuildError

from . import encoder, finetune, gguf_llm, whisper
from .recipe import DTYPE_SUFFIX, Job, Recipe, conversion_dtypes, onnx_file

__all__ = ["DTYPE_SUFFIX", "RECIPES", "Job", "Recipe", "conversion_dtypes", "get_recipe", "onnx_file"]

#: recipe name -> Recipe (tests register fakes here with monkeypatch)
RECIPES: dict[str, Recipe] = {
    r.name: r for r in (encoder.RECIPE, finetune.RECIPE, gguf_llm.RECIPE, whisper.RECIPE)
}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise BuildError(
            f"unknown conversion recipe {name!r}",
            hint=f"the manifest's conversion.recipe must be one of {sorted(RECIPES)} (builder/convert/)",
        ) from None
