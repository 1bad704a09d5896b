"""One step of a structured call: the side answers, the validator checks, one repair round, or the step fails.

The executor runs this per step of the plan (:mod:`hybrid_router.execute`), so what happens after a
step fails is the routing's: a device answer that still does not validate after its repair round is an
``InferenceError`` (a ``LocalError``: on route ``"auto"`` the cloud answers next, and the route's
``fallbacks`` says why); a cloud answer that does not validate is a ``CloudError`` (the device, whose
decoding is constrained, may answer next where the plan has it).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any

from hybrid_router import sides
from hybrid_router.chat import ChatRequest
from hybrid_router.errors import CloudError, InferenceError
from hybrid_router.execute import Outcome
from hybrid_router.providers.base import CloudProvider
from hybrid_router.redaction import restore
from hybrid_router.routing.plans import Step
from hybrid_router.runtime import LocalRuntime, ProgressCallback
from hybrid_router.sides import Output
from hybrid_router.structured import prompts
from hybrid_router.structured.partial import partial_value
from hybrid_router.structured.schema import Schema
from hybrid_router.structured.validate import Checked, check_text

__all__ = ["ROUNDS", "Answered", "PartialCallback", "answer_object"]

#: the first answer and one repair round
ROUNDS = 2
#: receives each new partial value of the answer being written (a repair round or the next side restarts)
PartialCallback = Callable[[Any], None]


@dataclass(frozen=True, slots=True)
class Answered:
    """A step's valid answer: the parsed value and its text; ``repaired``: the repair round's."""

    checked: Checked
    repaired: bool


async def answer_object(
    step: Step,
    request: ChatRequest,
    schema: Schema,
    *,
    tokens_in: int | None,
    runtime: LocalRuntime,
    cloud: CloudProvider | None,
    redacted: ChatRequest | None = None,
    mapping: Mapping[str, str] | None = None,
    on_progress: ProgressCallback | None = None,
    on_partial: PartialCallback | None = None,
) -> Outcome[Answered]:
    """``step``'s answer to ``request`` (the schema's instruction included), validated, with one repair
    round; ``redacted``: what the cloud is sent instead (its answers restored with ``mapping``)."""
    sent = redacted if step.target == "cloud" and redacted is not None else request
    used_in = used_out = 0
    last: Output | None = None
    checked: Checked | None = None
    for round_ in range(ROUNDS):
        restoring = mapping if sent is not request else None
        first_in = tokens_in if round_ == 0 else None
        output = await _one(step, sent, schema, first_in, runtime, cloud, on_progress, on_partial, restoring)
        used_in, used_out, last = used_in + output.tokens_in, used_out + output.tokens_out, output
        text = restore(output.text, restoring) if restoring else output.text
        checked = check_text(text, schema)
        if checked.ok:
            return Outcome(
                Answered(checked, repaired=round_ > 0),
                output.model,
                used_in,
                used_out,
                output.finish_reason,
                output.tokens_cached,
            )
        # the model sees its own answer (placeholders and all, as it wrote it) and what was wrong
        sent = dataclasses.replace(sent, messages=prompts.repair(sent.messages, output.text, checked.errors))
    assert checked is not None and last is not None
    raise _failed(step, checked, last)


async def _one(
    step: Step,
    sent: ChatRequest,
    schema: Schema,
    tokens_in: int | None,
    runtime: LocalRuntime,
    cloud: CloudProvider | None,
    on_progress: ProgressCallback | None,
    on_partial: PartialCallback | None,
    mapping: Mapping[str, str] | None,
) -> Output:
    if on_partial is None:
        return await sides.answer(
            step, sent, tokens_in, runtime=runtime, cloud=cloud, on_progress=on_progress, schema=schema
        )
    text, shown, output = "", "", None
    items = sides.pieces(
        step, sent, tokens_in, runtime=runtime, cloud=cloud, on_progress=on_progress, schema=schema
    )
    async with aclosing(items) as pieces:
        async for item in pieces:
            if isinstance(item, Output):
                output = item
                continue
            text += item
            value = partial_value(restore(text, mapping) if mapping else text)
            if value is not None and (key := json.dumps(value, sort_keys=True)) != shown:
                shown = key
                on_partial(value)
    if output is None:
        raise InferenceError("the answer ended without its result")
    return output


def _failed(step: Step, checked: Checked, output: Output) -> InferenceError | CloudError:
    errors = list(checked.errors)
    cut = " (it was cut at max_tokens)" if output.finish_reason == "length" else ""
    message = (
        f"{output.model or step.model}'s answer did not match the schema after a repair round{cut}: "
        + "; ".join(errors[:3])
    )
    details: dict[str, Any] = {"schema_errors": errors, "text": checked.text[:500]}
    if step.target == "local":
        return InferenceError(
            message,
            hint="Raise maxTokens, simplify the schema, or allow the cloud (route 'auto').",
            model=step.model,
            task="text-generation",
            **details,
        )
    return CloudError(
        message,
        hint="Simplify the schema or the task; the device's constrained decoding may answer instead.",
        model=step.model,
        **details,
    )
