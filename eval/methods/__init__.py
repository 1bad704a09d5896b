"""Which method serves each task, on a measurement (issue 17, item 8): zero-shot classification by the NLI
model against embedding similarity on label sets neither model trained on, and cross-encoder reranking
against the bi-encoder alone. See docs/models.md#which-method-answers and ``python -m eval.methods -h``.

The router's own steps score every item (:func:`hybrid_router.text_tasks.zero_shot_labels`,
:func:`hybrid_router.similarity.label_similarity`, :func:`hybrid_router.text_tasks.cross_encoder_ranking`,
:func:`hybrid_router.similarity.similarity_ranking`), run by :class:`eval.methods.onnx_runtime.OnnxRuntime`:
CPython onnxruntime on the ONNX files the browser loads, in the dtype the router loads by default.
"""
