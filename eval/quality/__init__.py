"""The quality harness: how good the device's answers are, and the prompt router on RouteLLM's
quality-against-cost curves (docs/quality.md).

- ``sets``: the answer sets (IFEval, GSM8K, MMLU, HumanEval), their deterministic subsets, references
  and the cloud's recorded verdicts;
- ``generate``: the device's answers from the built ONNX file the browser loads (onnxruntime, greedy,
  KV cache), cached on disk; ``runner``: which answers are new, generated in batches;
- ``scorers``: the automatic verdicts; ``report``: per set and model, and the curves' rows;
- ``curves``: the router's scores as a real call computes them, APGR and CPT; ``svg``: the plot;
- ``cli``: ``python -m eval.quality run``.
"""
