"""The Space's tabs, in order, and how a tab is mounted.

A tab is a :class:`TabSpec`: an id, a title and a builder, named as ``"module:function"``
(imported only when the app is built, so importing this package loads no Gradio). The app
opens ``gr.Tab(title)`` and calls the builder inside it with a :class:`TabContext` (the
enclosing ``gr.Blocks``, the tab, the Space's data, budget and judge); with
``blocks=True`` the builder gets the ``gr.Blocks`` itself, the signature of tabs written
for any Gradio app (e.g. ``uaes_hf.retrieval.tabs``). Mounting one more tab is one line::

    TabSpec("retrieval", "Retrieval", "uaes_hf.retrieval.tabs:build", blocks=True)

in :data:`DEFAULT_TABS`, or ``build_demo(extra_tabs=[...])``. The Retrieval tab wraps the
retrieval study's own tab functions this way (:mod:`uaes_hf.space.tabs.retrieval`).

Example:
    >>> [tab.title for tab in DEFAULT_TABS]
    ['Explore', 'Convergence', 'Your features', 'Neighbours', 'Judge', 'Retrieval']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from typing import Any


@dataclass(frozen=True)
class TabContext:
    """What a tab builder gets: the app, its own tab, and the Space's shared parts."""

    demo: Any  # gr.Blocks
    tab: Any  # gr.Tab
    data: Any  # uaes_hf.space.data.SpaceData
    budget: Any  # uaes_hf.space.budget.SpaceBudget
    judge: Any  # uaes_hf.space.judge.SpaceJudge


@dataclass(frozen=True)
class TabSpec:
    """One tab: ``id``, ``title`` and its builder (a callable or ``"module:function"``)."""

    id: str
    title: str
    build: str | Callable[..., Any]
    blocks: bool = False

    def builder(self) -> Callable[..., Any]:
        """The builder function (imported from its module when given by name)."""
        if callable(self.build):
            return self.build
        module, _, name = self.build.partition(":")
        if not module or not name:
            raise ValueError(
                f"tab {self.id!r}: build must be 'module:function', got {self.build!r}"
            )
        return getattr(import_module(module), name)

    def mount(self, context: TabContext) -> None:
        """Build the tab's widgets inside the current ``gr.Tab``."""
        function = self.builder()
        function(context.demo if self.blocks else context)


DEFAULT_TABS: tuple[TabSpec, ...] = (
    TabSpec("explore", "Explore", "uaes_hf.space.tabs.explore:build"),
    TabSpec("convergence", "Convergence", "uaes_hf.space.tabs.convergence:build"),
    TabSpec("features", "Your features", "uaes_hf.space.tabs.features:build"),
    TabSpec("neighbours", "Neighbours", "uaes_hf.space.tabs.neighbours:build"),
    TabSpec("judge", "Judge", "uaes_hf.space.tabs.judge:build"),
    TabSpec("retrieval", "Retrieval", "uaes_hf.space.tabs.retrieval:build"),
)
