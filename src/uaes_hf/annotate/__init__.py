"""Annotation: the LLM aesthetic judge for poems, on a shared chat client and a durable store.

Image scorers and image-to-poem backends live in :mod:`uaes_hf.images` (they use the client,
the store and the re-ask loop from here). Modules (import them directly; nothing heavy is
imported here):

- ``client``: OpenAI-compatible chat client: retries, backoff, a deadline per request and
  per call, a circuit breaker, a request cap, billed usage of every reply, preflight
  (``deadline``: the network layer of the deadline; ``backoff``: retry timing, bounded
  concurrency);
- ``store``: SQLite (WAL) result store keyed by (task, backend, model, prompt version,
  hash), with a schema check and a full-disk reserve (``keys``: keys, rows, prices);
- ``claims``: leases on items, so that runs sharing a store never pay for an item twice;
- ``reask``: the one ask / parse / re-ask loop of every model task;
- ``durable``: the one loop that runs paid calls over items into the store (claims,
  bounded concurrency, each result committed as it arrives);
- ``prompts``: versioned prompt templates (``poem-aesthetic-v2`` = the study's request);
- ``parsing``: robust JSON answer parsing and score validation;
- ``judge``: poems -> what the store lacks -> the durable loop -> a summary;
- ``local_backend``: the same messages through a packaged SmolLM2 (offline; weak scores);
- ``agreement``: judge vs human agreement (Spearman, quadratic kappa, confusion);
- ``export``: ratings file (id, score, rationale, annotator) for the poems dataset hook;
- ``poem_inputs``: read poems from a dataset folder or a file.

Example:
    >>> from uaes_hf.annotate.prompts import get_prompt
    >>> get_prompt().version
    'poem-aesthetic-v2'
"""
