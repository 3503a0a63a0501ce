"""Shared code of what this project puts on the Hub as Spaces: the evaluate metric modules.

- :mod:`uaes_hf.hub.metric_module`: the ``evaluate.Metric`` base class every module in
  ``metrics/<name>/`` subclasses (one metric per module, a thin shell over
  :func:`uaes_hf.alignment.compare`);
- :mod:`uaes_hf.hub.metric_app`: the Gradio app of a metric module's Space;
- :mod:`uaes_hf.hub.publish`: the exact file set of a metric Space, and its upload
  (``uaes publish metric``).

Nothing is imported at package import time.
"""
