"""Structured output: a JSON Schema subset (:mod:`.schema`), the validator (:mod:`.validate`), the
device's constrained decoding (:mod:`.automaton`), partial values for streams (:mod:`.partial`), and what
the models are told (:mod:`.prompts`). :meth:`hybrid_router.router.Router.generate_object` uses them."""

from hybrid_router.structured.automaton import TokenConstraint, Vocabulary
from hybrid_router.structured.partial import partial_value
from hybrid_router.structured.schema import Schema
from hybrid_router.structured.validate import Checked, check, check_text

__all__ = ["Checked", "Schema", "TokenConstraint", "Vocabulary", "check", "check_text", "partial_value"]
