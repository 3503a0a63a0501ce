"""The Gradio Space (``spaces/demo/app.py``) as a package: one module per tab, the data
access, the budget and the judge. See ``docs/architecture.md`` ("The Space").

- ``app``: :func:`build_demo` (a ``gr.Blocks`` from the tab registry) and :func:`launch_demo`;
- ``tabs/``: one module per tab (``explore``, ``convergence``, ``features``, ``neighbours``,
  ``judge``) and the registry (:class:`TabSpec`, :data:`DEFAULT_TABS`): a new tab is one
  line there;
- ``sources``/``data``/``loaders``/``feature_sets``: where results, poems, images and
  features come from (the run layout, ``latest_results``, the feature reader API);
- ``budget``: every endpoint's limit; ``uploads``: files refused before parsing;
- ``comparison``/``convergence``/``neighbours``/``poems``/``judge``: what each tab computes
  with the library and how it is shown (no Gradio: testable alone).

Every number comes from the library (:func:`uaes_hf.alignment.compare`, the experiments'
tables, the judge); figures from :mod:`uaes_hf.experiments.plots`. Nothing heavy is
imported with this package.

Example:
    >>> from uaes_hf.space import SpaceBudget
    >>> SpaceBudget().max_k
    100
"""

from __future__ import annotations

from uaes_hf._lazy import lazy_exports

_LAZY = {
    "build_demo": "uaes_hf.space.app",
    "launch_demo": "uaes_hf.space.app",
    "SpaceBudget": "uaes_hf.space.budget",
    "BudgetError": "uaes_hf.space.budget",
    "SpaceData": "uaes_hf.space.data",
    "SpaceSources": "uaes_hf.space.sources",
    "SpaceJudge": "uaes_hf.space.judge",
    "StoredFeatureSet": "uaes_hf.space.feature_sets",
    "RunFeatureSet": "uaes_hf.space.feature_sets",
    "read_run_poems": "uaes_hf.space.loaders",
    "read_run_images": "uaes_hf.space.loaders",
    "run_stage_dirs": "uaes_hf.space.loaders",
    "TabSpec": "uaes_hf.space.tabs",
    "TabContext": "uaes_hf.space.tabs",
    "DEFAULT_TABS": "uaes_hf.space.tabs",
}

__getattr__ = lazy_exports("uaes_hf.space", _LAZY)

__all__ = sorted(_LAZY)
