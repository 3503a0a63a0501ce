"""Settings of one Space: where its data comes from and whether the judge is on.

Everything is an argument of :func:`uaes_hf.space.app.build_demo`; what is not given comes
from the environment (:meth:`SpaceSources.from_env`), which is how a Hugging Face Space is
configured (Space variables and secrets):

========================  =================================================================
``UAES_RESULTS_DIR``      the report folder of ``uaes run`` (default: ``./report``, else the
                          newest finished run under ``$UAES_HOME``; see
                          :func:`uaes_hf.experiments.layout.latest_results`)
``UAES_POEMS``            poems: a dataset folder, a Hub id or ``embedded``
``UAES_POEMS_REVISION``   its config/branch
``UAES_IMAGES``           the image-poem-text dataset (folder or Hub id)
``UAES_FEATURES``         a feature store (``uaes extract`` output)
``UAES_FEATURES_DATASET`` which dataset's features in it
``UAES_SPACE_JUDGE``      ``1`` turns the Judge tab on (it spends the owner's API key)
``OPENAI_API_KEY``        the judge's key (secret; only read, never shown)
``OPENAI_BASE_URL``       the judge's OpenAI-compatible endpoint (never shown)
``UAES_JUDGE_MODEL``      the judge's model (default ``gpt-4o``, the study's judge)
``UAES_SPACE_JUDGE_STORE`` the judge's answer cache (default ``$UAES_HOME/space/judge.sqlite``)
========================  =================================================================

Example:
    >>> SpaceSources.from_env({"UAES_SPACE_JUDGE": "1"}).judge_enabled
    True
    >>> SpaceSources.from_env({}, poems="embedded").poems
    'embedded'
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

JUDGE_FLAG = "UAES_SPACE_JUDGE"
DEFAULT_JUDGE_MODEL = "gpt-4o"
_ENV = {
    "results_dir": "UAES_RESULTS_DIR",
    "poems": "UAES_POEMS",
    "poems_revision": "UAES_POEMS_REVISION",
    "images": "UAES_IMAGES",
    "features_root": "UAES_FEATURES",
    "features_dataset": "UAES_FEATURES_DATASET",
    "judge_base_url": "OPENAI_BASE_URL",
    "judge_model": "UAES_JUDGE_MODEL",
    "judge_store": "UAES_SPACE_JUDGE_STORE",
}


@dataclass(frozen=True)
class SpaceSources:
    """Where one Space's data comes from.

    ``None`` for poems, images or features means "the run behind the results" (its
    annotated poems, its image-text pairs, its extracted features); ``None`` for
    ``results_dir`` means "the latest results" (``./report`` or the newest run).
    """

    results_dir: Any = None
    poems: Any = None
    poems_revision: str | None = None
    images: Any = None
    features_root: Any = None
    features_dataset: str | None = None
    judge_enabled: bool = False
    judge_base_url: str | None = None
    judge_model: str = DEFAULT_JUDGE_MODEL
    judge_store: Any = None
    cwd: Any = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **given: Any) -> SpaceSources:
        """Arguments given (not ``None``) win; the rest come from ``environ``."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, variable in _ENV.items():
            text = environ.get(variable, "").strip()
            if text:
                values[name] = text
        values["judge_enabled"] = environ.get(JUDGE_FLAG, "").strip().lower() in {
            "1",
            "true",
            "yes",
            "on",
        }
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(given) - known)
        if unknown:
            raise ValueError(f"unknown Space setting(s) {unknown}; known: {sorted(known)}")
        values.update({name: value for name, value in given.items() if value is not None})
        return cls(**values)

    def with_results(self, results_dir: Any) -> SpaceSources:
        return replace(self, results_dir=results_dir)

    def working_dir(self) -> Path:
        """Where ``./report`` is looked for (the process's working directory by default)."""
        return Path(self.cwd) if self.cwd is not None else Path.cwd()
