"""Cloud providers: each speaks one API's wire format through a transport (see ``base``)."""

from .anthropic import ANTHROPIC_VERSION, AnthropicProvider
from .base import (
    ChatMessage,
    CloudProvider,
    Completion,
    Delta,
    GenerateOptions,
    MessageLike,
    StreamItem,
    StreamParser,
    Usage,
    normalize_messages,
)
from .http import HTTPProvider
from .openai_compat import OpenAICompatProvider

__all__ = [
    "ANTHROPIC_VERSION",
    "AnthropicProvider",
    "ChatMessage",
    "CloudProvider",
    "Completion",
    "Delta",
    "GenerateOptions",
    "HTTPProvider",
    "MessageLike",
    "OpenAICompatProvider",
    "StreamItem",
    "StreamParser",
    "Usage",
    "normalize_messages",
]
