"""uaes-hf Gradio Space: do AI models agree on beautiful things?

The app is built by the library (:func:`uaes_hf.space.app.build_demo`, one module per tab
under ``uaes_hf.space.tabs``); this file only starts it. Run it with
``python spaces/demo/app.py`` where ``uaes run`` (``make run``) wrote ``report/``, or
anywhere: it finds the newest finished run under ``$UAES_HOME``. Settings come from Space
variables (``UAES_RESULTS_DIR``, ``UAES_POEMS``, ``UAES_FEATURES``, ``UAES_SPACE_JUDGE``, ...;
see ``README.md``).
"""

from __future__ import annotations

from uaes_hf.space.app import build_demo, launch_demo

__all__ = ["build_demo", "launch_demo"]

if __name__ == "__main__":
    launch_demo(build_demo())
