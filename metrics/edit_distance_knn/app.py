"""Gradio app of the edit_distance_knn metric: upload two feature files, get the score.

Run: ``python metrics/edit_distance_knn/app.py`` (serves on http://127.0.0.1:7860).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def build_demo() -> Any:
    """The Blocks app (not launched)."""
    from uaes_hf.hub.metric_app import build_metric_demo

    return build_metric_demo(HERE)


if __name__ == "__main__":
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    build_demo().launch()
