"""Annotation: the LLM aesthetic judge for poems (and, from other modules, image scorers and
image-to-poem backends), on a shared chat client and a durable result store.

Modules (import them directly; nothing heavy is imported here):

- ``client``: OpenAI-compatible chat client with retries, backoff, preflight, concurrency;
- ``store``: SQLite (WAL) result store keyed by (task, backend, model, prompt version, hash);
- ``prompts``: versioned prompt templates (``poem-aesthetic-v1`` = the study's rubric);
- ``parsing``: robust JSON answer parsing and score validation;
- ``judge``: orchestration (pending -> concurrent calls -> store -> summary);
- ``local_backend``: the same rubric through a packaged SmolLM2 (offline; weak scores);
- ``agreement``: judge vs human agreement (Spearman, quadratic kappa, confusion);
- ``export``: ratings file (id, score, rationale, annotator) for the poems dataset hook;
- ``poem_inputs``: read poems from a dataset folder or a file.

Example:
    >>> from uaes_hf.annotate.prompts import get_prompt
    >>> get_prompt("poem-aesthetic-v1").version
    'poem-aesthetic-v1'
"""
