"""What the learned prompt router looks at: the text it embeds and the text statistics it counts.

Both are pure functions of the prompt, so the worker (Pyodide) and CPython compute the same values:

- :func:`router_text`: the text a request is judged by, the last user message of a chat (or the prompt
  string) and how many user turns came before it;
- :func:`embedding_text`: the string the embedding model (all-MiniLM-L6-v2, mean pooling, normalized)
  must be run on: the router text, cut to its first ``EMBED_HEAD_CHARS`` and last ``EMBED_TAIL_CHARS``
  characters when longer (the task of a long prompt is often stated after a pasted text), then cut to
  256 tokens by the tokenizer as usual;
- :func:`lexical_features`: :func:`hybrid_router.complexity.extract_features` (size, math, code, cue and
  domain counts) plus the task cues in ``TASK_CUES`` (what kind of answer is asked for).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from hybrid_router import complexity
from hybrid_router.errors import ValidationError

__all__ = [
    "EMBED_HEAD_CHARS",
    "EMBED_TAIL_CHARS",
    "LEXICAL_FEATURES",
    "TASK_CUES",
    "embedding_text",
    "lexical_features",
    "router_text",
]

EMBED_HEAD_CHARS = 600
EMBED_TAIL_CHARS = 400
_JOIN = "\n...\n"

#: Task cues, each a count (capped at 5) of matches of a lower-cased regex.
TASK_CUES: Mapping[str, str] = {
    "cue_code_request": (
        r"\b(?:function|script|program|code|coding|class|method|api|sql|regex|bug|debug|compile[sr]?|"
        r"implement|algorithm|python|javascript|java|c\+\+|c#|typescript|rust|golang|html|css|bash|json|"
        r"react|database|query|error|exception)\b"
    ),
    "cue_math_request": (
        r"\b(?:solve|calculate|compute|equation|probability|integral|derivative|prove|theorem|matrix|"
        r"percent|percentage|average|how many|how much|sum of|product of|ratio|area|volume|speed|"
        r"rate|total)\b"
    ),
    "cue_long_output": (
        r"\b(?:essay|report|article|paper|proposal|detailed|in detail|comprehensive|\d{3,} words|"
        r"chapters?|lesson plans?|business plan|whitepaper|literature review|analy[sz]e|discuss|"
        r"compare|evaluate|critically)\b"
    ),
    "cue_everyday": (
        r"\b(?:hi|hello|hey|thanks|thank you|rewrite|rephrase|paraphrase|translate|summari[sz]e|shorten|"
        r"spelling|grammar|polite|tweet|caption|joke|poem|haiku|limerick|recipe|recommend|suggest|tips?|"
        r"favou?rite|birthday|gift|movie|song)\b"
    ),
}
_CUES = {name: re.compile(pattern) for name, pattern in TASK_CUES.items()}
_CUE_CAP = 5.0

LEXICAL_FEATURES: tuple[str, ...] = (*complexity.FEATURE_NAMES, *TASK_CUES, "words_log", "lines_log")


def _content_text(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):  # OpenAI content parts: [{"type": "text", "text": ...}, ...]
        parts = [p.get("text") for p in content if isinstance(p, Mapping) and p.get("type") == "text"]
        return "\n".join(p for p in parts if isinstance(p, str))
    raise ValidationError("message content must be a string or a list of content parts", field="content")


def router_text(prompt: str | Sequence[Mapping[str, Any]]) -> tuple[str, int]:
    """The text the router judges (a prompt string, or a chat's last user message) and the number of
    user turns before it. Raises ``ValidationError`` for anything else or an empty text."""
    if isinstance(prompt, str):
        text, prior = prompt, 0
    elif isinstance(prompt, Sequence) and not isinstance(prompt, bytes | bytearray):
        messages = [m for m in prompt if isinstance(m, Mapping)]
        if len(messages) != len(prompt):
            raise ValidationError("every message must be a mapping with 'role' and 'content'", field="prompt")
        users = [m for m in messages if m.get("role") == "user"]
        if not users:
            raise ValidationError("the messages contain no user message", field="prompt")
        text, prior = _content_text(users[-1].get("content")), len(users) - 1
    else:
        raise ValidationError(
            f"prompt must be a string or a list of messages, not {type(prompt).__name__}", field="prompt"
        )
    if not text.strip():
        raise ValidationError("the prompt is empty", field="prompt", hint="Send a non-empty prompt.")
    return text, prior


def embedding_text(text: str) -> str:
    """The string to embed for ``text`` (its head and tail when it is long); the same in the worker."""
    text = text.strip()
    if len(text) <= EMBED_HEAD_CHARS + EMBED_TAIL_CHARS:
        return text
    return text[:EMBED_HEAD_CHARS] + _JOIN + text[-EMBED_TAIL_CHARS:]


def lexical_features(text: str, prior_turns: int = 0) -> dict[str, float]:
    """The text statistics and task cues of one prompt, keyed by ``LEXICAL_FEATURES``."""
    feats = complexity.extract_features(text, prior_turns)
    scan = text[: complexity.MAX_SCAN_CHARS].lower()
    for name, pattern in _CUES.items():
        feats[name] = min(float(len(pattern.findall(scan))), _CUE_CAP)
    feats["words_log"] = math.log1p(len(text.split()))
    feats["lines_log"] = math.log1p(sum(1 for line in text.splitlines() if line.strip()))
    return feats
