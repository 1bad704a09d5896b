"""Repair the tokenizer transformers rebuilds from a GGUF vocabulary so it matches the model family's own.

transformers turns a GGUF ``gpt2`` vocabulary into a generic byte-level BPE: wrong pre-tokenizer (SmolLM2
splits digits one by one), a BOS added to every input, no chat template in ``tokenizer_config.json``.
This writes the family's pre-tokenizer and decoder, no BOS, eos/pad from the GGUF, the GGUF's chat template
and ``model_max_length`` = the GGUF context length.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from builder.common import BuildError


def _byte_level(**kw: Any) -> dict[str, Any]:
    return {"type": "ByteLevel", **kw}


#: tokenizer.ggml.pre -> (normalizer, pre_tokenizer, tokenizer_class)
PRE_TOKENIZERS: dict[str, tuple[dict[str, Any] | None, dict[str, Any], str]] = {
    # SmolLM / SmolLM2 (cosmo2 tokenizer): single digits, then GPT-2's byte-level regex
    "smollm": (
        None,
        {
            "type": "Sequence",
            "pretokenizers": [
                {"type": "Digits", "individual_digits": True},
                _byte_level(add_prefix_space=False, trim_offsets=True, use_regex=True),
            ],
        },
        "GPT2Tokenizer",
    ),
    # Qwen2 / Qwen2.5 / Qwen3
    "qwen2": (
        {"type": "NFC"},
        {
            "type": "Sequence",
            "pretokenizers": [
                {
                    "type": "Split",
                    "pattern": {
                        "Regex": "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
                        "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
                    },
                    "behavior": "Isolated",
                    "invert": False,
                },
                _byte_level(add_prefix_space=False, trim_offsets=False, use_regex=False),
            ],
        },
        "Qwen2Tokenizer",
    ),
}


def repair_tokenizer(gguf_file: Path, hf_dir: Path) -> str:
    """Rewrite ``tokenizer.json``, ``tokenizer_config.json``, ``special_tokens_map.json`` in ``hf_dir``."""
    from gguf import GGUFReader

    reader = GGUFReader(str(gguf_file))

    def field(key: str, default: Any = None) -> Any:
        f = reader.fields.get(key)
        return f.contents() if f is not None else default

    if field("tokenizer.ggml.model") != "gpt2":
        raise BuildError(f"{gguf_file.name}: only gpt2-style BPE GGUF vocabularies are handled")
    pre = field("tokenizer.ggml.pre")
    if pre not in PRE_TOKENIZERS:
        raise BuildError(
            f"{gguf_file.name}: unhandled tokenizer.ggml.pre={pre!r}",
            hint=f"add it to PRE_TOKENIZERS in {__file__}",
        )
    normalizer, pre_tokenizer, cls = PRE_TOKENIZERS[pre]
    tokens = field("tokenizer.ggml.tokens")
    bos, eos, pad, unk = (field(f"tokenizer.ggml.{k}_token_id") for k in ("bos", "eos", "padding", "unknown"))

    tj_path = hf_dir / "tokenizer.json"
    tj = json.loads(tj_path.read_text(encoding="utf-8"))
    tj["normalizer"] = normalizer
    tj["pre_tokenizer"] = pre_tokenizer
    tj["post_processor"] = _byte_level(add_prefix_space=False, trim_offsets=False, use_regex=False)  # no BOS
    tj["decoder"] = _byte_level(add_prefix_space=False, trim_offsets=False, use_regex=False)
    tj["model"]["byte_fallback"] = False
    tj["model"]["ignore_merges"] = tj["model"].get("ignore_merges", False)
    tj_path.write_text(json.dumps(tj, ensure_ascii=False), encoding="utf-8")

    cfg_path = hf_dir / "tokenizer_config.json"
    old = json.loads(cfg_path.read_text(encoding="utf-8"))
    arch = field("general.architecture")
    cfg = {k: v for k, v in old.items() if k == "added_tokens_decoder"}
    cfg.update(
        tokenizer_class=cls,
        bos_token=tokens[bos] if bos is not None else None,
        eos_token=tokens[eos],
        pad_token=tokens[pad] if pad is not None else tokens[eos],
        unk_token=tokens[unk] if unk is not None else None,
        add_bos_token=False,
        add_prefix_space=False,
        clean_up_tokenization_spaces=False,
        model_max_length=int(field(f"{arch}.context_length", 2048)),
        chat_template=field("tokenizer.chat_template"),
    )
    cfg_path.write_text(json.dumps(cfg, ensure_ascii=False, indent=1), encoding="utf-8")
    special = {k: cfg[k] for k in ("bos_token", "eos_token", "pad_token", "unk_token") if cfg[k]}
    (hf_dir / "special_tokens_map.json").write_text(json.dumps(special, indent=1), encoding="utf-8")
    return str(pre)
