"""The quality harness's device answers are the browser's: CPython onnxruntime on the built ONNX file
(eval/quality/generate.py) gives the same greedy text as Transformers.js in Chromium, for a few prompts
of the harness's sets (inline here: the sets' data is not on every machine)."""

from __future__ import annotations

from typing import Any

import pytest
from eval.quality.generate import Generator, chat_models

from tests.harness import RouterPage, open_router_page

pytestmark = pytest.mark.browser

MODEL = "SmolLM2-135M-Instruct"
TOKENS = 48
#: one prompt in the style of each set (an IFEval instruction, a GSM8K problem, an MMLU question, a
#: HumanEval stub)
PROMPTS = [
    "Write a short poem about a cat. Do not use any commas in your response.",
    "A baker sells 12 muffins in the morning and twice as many in the afternoon. How many muffins does "
    "he sell in all?",
    "Which planet is known as the Red Planet?\nA. Venus\nB. Mars\nC. Jupiter\nD. Saturn\nAnswer:",
    'def add(a: int, b: int) -> int:\n    """Return the sum of a and b.\n    >>> add(2, 3)\n    5\n    """\n',
]


@pytest.fixture(scope="module")
def page(browser: Any, server: Any) -> Any:
    rp = open_router_page(browser, server)
    yield rp
    rp.page.context.close()


@pytest.mark.skipif(not chat_models([MODEL]), reason=f"{MODEL} is not built")
def test_the_harness_answers_as_the_browser_does(page: RouterPage) -> None:
    generator = Generator(chat_models([MODEL])[0])
    for prompt in PROMPTS:
        harness = generator.answer(prompt, TOKENS)
        result = page.call(
            "return await router.generate({ prompt: arg.prompt, maxTokens: arg.n, route: 'local' });",
            {"prompt": prompt, "n": TOKENS},
        )
        assert result["route"]["model"] == MODEL
        assert result["text"].strip() == harness.text.strip(), prompt
        assert result["usage"]["tokens_out"] == harness.tokens, prompt
