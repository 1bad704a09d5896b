"""Recipe ``optimum-encoder``: a (sentence-transformers) BERT-like folder -> a Transformers.js folder.

optimum exports ``onnx/model.onnx`` (fp32); the other dtypes are derived from it (:mod:`.quantize`). The
packaged tokenizer files are copied byte for byte (the exporter re-serialises them), with one exception:
``tokenizer_config.json`` gets the keys of ``params["tokenizer_config"]``. For all-MiniLM-L6-v2 that is
``model_max_length: 256``: sentence-transformers truncates at ``max_seq_length`` 256
(sentence_bert_config.json), while the packaged tokenizer says 512, and Transformers.js truncates at
``model_max_length``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from builder.common import BuildError, log

from .quantize import make_dtype
from .recipe import Job, Recipe, onnx_file

#: Tokenizer files taken from the source when it has them (else from the exporter's output).
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "sentencepiece.bpe.model",
    "spm.model",
    "merges.txt",
    "vocab.json",
)


def export_onnx(src: Path, out: Path, *, task: str, opset: int) -> None:
    """optimum's exporter, in this process, without its validation run (fidelity is checked separately)."""
    from optimum.exporters.onnx import main_export

    main_export(str(src), str(out), task=task, opset=opset, library_name="transformers", do_validation=False)


def patch_json_keys(text: str, changes: dict[str, object]) -> str:
    """``text`` (a JSON object) with ``changes`` applied, keeping key order and the compact one-line style."""
    data = json.loads(text)
    data.update(changes)
    indent = 2 if text.lstrip().startswith("{\n") else None
    return json.dumps(data, ensure_ascii=False, indent=indent) + ("\n" if text.endswith("\n") else "")


def _check_max_length(src: Path, changes: dict[str, object]) -> None:
    st_config = src / "sentence_bert_config.json"
    if "model_max_length" in changes and st_config.exists():
        st_max = json.loads(st_config.read_text()).get("max_seq_length")
        if st_max is not None and st_max != changes["model_max_length"]:
            raise BuildError(
                f"tokenizer_config.model_max_length {changes['model_max_length']} disagrees with "
                f"sentence-transformers' max_seq_length {st_max} ({st_config})",
                hint="set conversion.tokenizer_config.model_max_length to max_seq_length in the manifest",
            )


def export(job: Job, reference: Path, out: Path) -> None:
    params = job.params
    changes = dict(params.get("tokenizer_config", {}))
    _check_max_length(reference, changes)
    (out / "onnx").mkdir(parents=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        exported = Path(tmp)
        log(f"{job.model_id}: optimum export ({params['task']}, opset {params['opset']})")
        export_onnx(reference, exported, task=params["task"], opset=params["opset"])
        shutil.move(exported / "model.onnx", out / onnx_file("fp32"))
        shutil.copyfile(exported / "config.json", out / "config.json")
        for name in TOKENIZER_FILES:
            origin = reference / name if (reference / name).exists() else exported / name
            if origin.exists():
                shutil.copyfile(origin, out / name)
    if changes:
        cfg = out / "tokenizer_config.json"
        cfg.write_text(patch_json_keys(cfg.read_text(), changes))
    for dtype, spec in job.dtypes.items():
        if dtype != "fp32":
            log(f"{job.model_id}: {dtype} ({spec.get('quantize')})")
            make_dtype(out / onnx_file("fp32"), out / onnx_file(dtype), spec)
    if "fp32" not in job.dtypes:
        (out / onnx_file("fp32")).unlink()


RECIPE = Recipe(
    name="optimum-encoder",
    export=export,
    tools=("torch", "transformers", "optimum", "optimum-onnx", "onnx", "onnxruntime", "numpy"),
)
