"""What the planner learns from a prompt before it decides: the prompt router's score, and the personal
data in it.

- :meth:`PromptFacts.score`: the learned router (:mod:`hybrid_router.prompt_router`) over the last user
  message, with the on-device embedding model's vector of it (the ``embedding+lexical`` head) or, where
  that cannot be had or is not wanted (a dry run), its text statistics alone (the ``lexical`` head). If
  the router's weights cannot be read, the older lexical estimate (:mod:`hybrid_router.complexity`).
- :meth:`PromptFacts.personal_data`: per message, the findings of :func:`hybrid_router.pii.detect`:
  e-mail addresses, phone numbers, payment cards, IBANs and IP addresses by their patterns, and people,
  organisations and places by the project's NER model (a message longer than its window in several
  passes); and the detectors that could not run (``"ner:<model>"`` when the entity model is not
  installed, fails to load or fails on a message), so the rules can keep such a prompt on the device
  instead of trusting a check that did not happen.

A dry run (``Router.route``) asks for the same facts as a real call: the same decision, score and rule.

Model calls wait their turn on the model's queue (the executor's), as every other call does.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hybrid_router import embeddings
from hybrid_router.chat import ChatRequest
from hybrid_router.complexity import DEFAULT_THRESHOLD, estimate_text
from hybrid_router.entities import Entity, group_entities, piece_offsets
from hybrid_router.errors import HybridRouterError, InferenceError
from hybrid_router.manifest import Manifest, ModelEntry
from hybrid_router.pii import NER_MODEL, Finding, detect
from hybrid_router.prompt_features import embedding_text
from hybrid_router.prompt_router import PromptRouter, RouterScore
from hybrid_router.routing import EMBED, NER
from hybrid_router.runtime import LocalRuntime

__all__ = ["HEAD_COMPLEXITY", "PersonalData", "PromptFacts", "ner_detector"]

#: the head name of the fallback estimate (the router's weights could not be read)
HEAD_COMPLEXITY = "complexity"

Queue = Callable[[str], contextlib.AbstractAsyncContextManager[object]]
#: the most passes of the entity model over one message (a longer one counts as not checked)
NER_PASSES = 64
#: how far before the end of what a truncated pass saw the next pass starts (characters)
NER_OVERLAP_CHARS = 80


def ner_detector(model_id: str) -> str:
    """How a route names the entity model as a personal-data detector."""
    return f"ner:{model_id}"


@dataclass(frozen=True, slots=True)
class PersonalData:
    """The findings of each message, in order, and the detectors that could not run (``missing``)."""

    findings: tuple[tuple[Finding, ...], ...]
    missing: tuple[str, ...] = ()

    @property
    def all(self) -> list[Finding]:
        return [f for group in self.findings for f in group]


class PromptFacts:
    """The prompt's facts for ``runtime`` and the current ``manifest()``; ``queue(model_id)`` is the
    model's turn."""

    def __init__(
        self,
        runtime: LocalRuntime,
        manifest: Callable[[], Manifest],
        queue: Queue,
        router: PromptRouter | None = None,
    ) -> None:
        self.runtime = runtime
        self.manifest = manifest
        self.queue = queue
        self._router = router
        self._router_failed = False

    @property
    def router(self) -> PromptRouter | None:
        """The learned router (read once); None when its weights cannot be read."""
        if self._router is None and not self._router_failed:
            try:
                self._router = PromptRouter.load()
            except HybridRouterError:
                self._router_failed = True
        return self._router

    def threshold(self, score: RouterScore, cloud_share: float | None) -> float:
        """Rule 7's threshold for ``score``'s head: the one ``cloud_share`` gives on the router's reference
        mix, else the head's calibrated one."""
        router = self.router
        if cloud_share is not None and router is not None and score.head != HEAD_COMPLEXITY:
            return router.threshold_for_share(cloud_share, score.head)
        return score.threshold

    async def score(self, request: ChatRequest, *, embed: bool) -> RouterScore:
        text, prior_turns = request.scored
        router = self.router
        if router is None:
            c = estimate_text(text, prior_turns)
            return RouterScore(
                c.score, DEFAULT_THRESHOLD, HEAD_COMPLEXITY, c.top_reasons, dict(c.features), c.version
            )
        vector = await self._vector(text) if embed else None
        if vector is not None:
            try:
                return router.score(text, vector, prior_turns=prior_turns)
            except HybridRouterError:  # not the embedding model the router was trained on: the lexical head
                pass
        return router.score(text, None, prior_turns=prior_turns)

    async def _vector(self, text: str) -> Any:
        models = self.manifest().for_task(EMBED)
        if not models:
            return None
        entry = models[0]
        try:
            async with self.queue(entry.id):
                rows = await embeddings.vectors(
                    self.runtime, entry, entry.default_dtype, [embedding_text(text)]
                )
        except Exception:  # the lexical head decides (CancelledError passes: it is not an Exception)
            return None
        return rows[0]

    async def personal_data(self, request: ChatRequest) -> PersonalData:
        """The findings of each message, in order; the entity model's name in ``missing`` when it is not
        installed or failed (the patterns alone found what they could: names went unchecked)."""
        models = self.manifest().for_task(NER)
        missing = () if models else (ner_detector(NER_MODEL),)
        out: list[tuple[Finding, ...]] = []
        for message in request.messages:
            entities: list[Any] = []
            if models and message.content.strip():
                entry = models[0]
                try:
                    entities = await self._entities(entry, message.content)
                except Exception:  # the patterns alone, and names unchecked (CancelledError passes)
                    entities = []
                    missing = (ner_detector(entry.id),)
            out.append(tuple(detect(message.content, entities)))
        return PersonalData(tuple(out), missing)

    async def _entities(self, entry: ModelEntry, text: str) -> list[Entity]:
        """The entity model over the whole of ``text``. The pipeline truncates a text longer than the
        model's window (256 word pieces): the rest is read again, from a little before the last piece the
        model saw (an entity cut there is read whole the second time; :func:`~hybrid_router.pii.merge`
        keeps the longer span). More than :data:`NER_PASSES` passes raise: names went unchecked."""
        found: list[Entity] = []
        start = 0
        for _ in range(NER_PASSES):
            part = text[start:]
            async with self.queue(entry.id):
                tokens = list(await self.runtime.token_classification(entry, entry.default_dtype, part))
            found += [
                dataclasses.replace(e, start=e.start + start, end=e.end + start)
                for e in group_entities(part, tokens)
            ]
            ends = [o[1] for o in piece_offsets(part, [str(t["word"]) for t in tokens]) if o is not None]
            seen = max(ends, default=0)
            if not part[seen:].strip():
                return found
            if seen == 0:
                raise InferenceError(f"{entry.id} read none of the text", model=entry.id)
            again = part.rfind(" ", 0, max(1, seen - NER_OVERLAP_CHARS))
            start += again if again > 0 else seen
        raise InferenceError(
            f"{entry.id}: the text is longer than {NER_PASSES} passes of the entity model", model=entry.id
        )
