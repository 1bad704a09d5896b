"""Cloud providers: each speaks one API's wire format through a transport (see ``base``)."""

from .anthropic import ANTHROPIC_VERSION, AnthropicProvider
from .base import (
    ChatMessage,
    CloudProvider,
    Completion,
    Delta,
    GenerateOptions,
    StreamItem,
    StreamParser,
    Usage,
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
    "OpenAICompatProvider",
    "StreamItem",
    "StreamParser",
    "Usage",
]
