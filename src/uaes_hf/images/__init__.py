"""Images: aesthetic scorers, image-to-poem backends, and image-poem-text rows.

Not poem judging (that is :mod:`uaes_hf.annotate`); the model-backed parts use its chat
client, durable store and shared ask/re-ask loop. Modules (import them directly; nothing
heavy is imported here):

- ``scorers``: the public names of every image scorer (``levels``, ``classical``,
  ``laion``, ``vlm``);
- ``poems``: image-to-poem backends (VLM poem generator, offline retrieval baseline);
- ``records``: :func:`~uaes_hf.images.records.image_text_rows`, the one builder of
  image-poem-text rows (used by the experiment and the dataset builder);
- ``dataset``: the image-poem-text dataset repo builder.

Example:
    >>> from uaes_hf.images.levels import level_from_cuts
    >>> level_from_cuts(6.2, (4.0, 5.0, 6.0, 7.0))
    4
"""
