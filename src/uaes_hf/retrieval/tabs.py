"""Gradio tabs of the retrieval study, built inside a Blocks app that the caller owns.

- :func:`add_vote_tab`: collects HPIR-style votes. It shows a query and two rows of results
  (in an order fixed per task by a hash, so half of the tasks show ``group_b`` first),
  the annotator picks the better row for an aspect, and the vote goes to a durable
  :class:`~uaes_hf.retrieval.votes.VoteLog`. System names are never shown.
- :func:`add_results_tab`: type a query, pick a system, see its top-k images with their
  similarity, aesthetic score and relevance.

API names (for ``gradio_client``): ``vote_load(task_number)``,
``vote_submit(task_number, aspect, choice, annotator)``,
``retrieval_search(query, system, k)``.

Example:
    >>> import gradio as gr  # doctest: +SKIP
    >>> with gr.Blocks() as demo:  # doctest: +SKIP
    ...     add_vote_tab(demo, tasks, VoteLog("votes.jsonl"))  # doctest: +SKIP
    ...     add_results_tab(demo, searcher)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from typing import Any, Protocol

from uaes_hf.retrieval.hpir import HPIR_ASPECTS
from uaes_hf.retrieval.votes import VoteLog, VoteTask

ROW_CHOICES = ("Row 1", "Row 2")


class Searcher(Protocol):
    """What the results tab needs: system names and a search function."""

    systems: Sequence[str]

    def search(self, query: str, system: str, k: int) -> list[dict[str, Any]]: ...


def _inside(demo: Any) -> Any:
    """``demo``'s build context, unless the caller is already building ``demo``.

    Re-entering a Blocks that is being built leaves Gradio's global build context pointing
    at it, and the next app built in the process would then get no endpoints.
    """
    from gradio.context import Context

    return contextlib.nullcontext() if Context.root_block is demo else demo


def shown_first(task: VoteTask, salt: str = "uaes-votes-v1") -> str:
    """Which group the tab shows as row 1 for ``task`` (``"a"`` or ``"b"``), fixed per task.

    Example:
        >>> shown_first(VoteTask("q", ("x",), ("y",))) in ("a", "b")
        True
    """
    digest = hashlib.sha256(f"{salt}\x00{task.task_id}".encode()).digest()
    return "a" if digest[0] % 2 == 0 else "b"


def _task(tasks: Sequence[VoteTask], number: Any) -> VoteTask:
    try:
        index = int(number)
    except (TypeError, ValueError):
        raise ValueError(f"task number must be an integer, got {number!r}") from None
    if not 1 <= index <= len(tasks):
        raise ValueError(f"task number must be between 1 and {len(tasks)}, got {index}")
    return tasks[index - 1]


def load_task(tasks: Sequence[VoteTask], number: Any) -> tuple[str, list[str], list[str]]:
    """(query markdown, row 1 images, row 2 images) of task ``number`` (1-based)."""
    task = _task(tasks, number)
    first, second = (
        (task.group_a, task.group_b) if shown_first(task) == "a" else (task.group_b, task.group_a)
    )
    return f"### Query: {task.query}", list(first), list(second)


def submit_vote(
    tasks: Sequence[VoteTask],
    log: VoteLog,
    number: Any,
    aspect: str,
    choice: str,
    annotator: str,
) -> str:
    """Record a vote given as "Row 1"/"Row 2" on screen; returns a status line."""
    task = _task(tasks, number)
    if choice not in ROW_CHOICES:
        raise ValueError(f"pick {ROW_CHOICES[0]!r} or {ROW_CHOICES[1]!r}, got {choice!r}")
    first = shown_first(task)
    picked_first = choice == ROW_CHOICES[0]
    group = first if picked_first else ("b" if first == "a" else "a")
    log.append(
        task, aspect=aspect, choice=group, annotator=annotator or "anonymous", shown_first=first
    )
    return f"Saved: {aspect} vote for task {int(number)} ({len(log.read())} votes in the log)."


def add_vote_tab(demo: Any, tasks: Sequence[VoteTask], log: VoteLog, label: str = "Vote") -> None:
    """Add the voting tab to ``demo`` (a ``gr.Blocks``); see the module doc."""
    import gradio as gr

    if not tasks:
        raise ValueError("the vote tab needs at least one task")
    tasks = list(tasks)

    def on_load(number: Any) -> tuple[str, list[str], list[str]]:
        try:
            return load_task(tasks, number)
        except ValueError as err:
            raise gr.Error(str(err)) from None

    def on_submit(number: Any, aspect: str, choice: str, annotator: str) -> str:
        try:
            return submit_vote(tasks, log, number, aspect, choice, annotator)
        except ValueError as err:
            raise gr.Error(str(err)) from None

    with _inside(demo), gr.Tab(label):
        gr.Markdown(
            "Which row of search results fits the query better? Judge one aspect at a time: "
            "**accuracy** (the images match the query), **aesthetics** (they are beautiful "
            "and well made), **diversity** (they are varied). Votes are saved at once."
        )
        with gr.Row():
            number = gr.Number(
                value=1, precision=0, minimum=1, maximum=len(tasks), label=f"task (1-{len(tasks)})"
            )
            annotator = gr.Textbox(label="your name or id", value="")
            load = gr.Button("Show task")
        query = gr.Markdown()
        row1 = gr.Gallery(label=ROW_CHOICES[0], columns=5, height=220)
        row2 = gr.Gallery(label=ROW_CHOICES[1], columns=5, height=220)
        with gr.Row():
            aspect = gr.Radio(list(HPIR_ASPECTS), value=HPIR_ASPECTS[0], label="aspect")
            choice = gr.Radio(list(ROW_CHOICES), label="the better row")
            submit = gr.Button("Submit vote", variant="primary")
        status = gr.Markdown()
        load.click(on_load, [number], [query, row1, row2], api_name="vote_load")
        submit.click(
            on_submit, [number, aspect, choice, annotator], [status], api_name="vote_submit"
        )


def results_table(results: Sequence[dict[str, Any]]) -> str:
    """Markdown table of search results (rank, caption, similarity, aesthetic, relevance).

    Example:
        >>> print(results_table([{"caption": "a cat", "similarity": 0.5}]).splitlines()[2])
        | 1 | a cat | 0.500 | - | - |
    """
    lines = ["| rank | caption | similarity | aesthetic | relevance |", "|---|---|---|---|---|"]
    for rank, row in enumerate(results, start=1):
        cells = [
            f"{row[name]:.3f}" if isinstance(row.get(name), (int, float)) else "-"
            for name in ("similarity", "aesthetic", "relevance")
        ]
        caption = str(row.get("caption", "")).replace("|", "/")[:120]
        lines.append(f"| {rank} | {caption} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def add_results_tab(demo: Any, searcher: Searcher, label: str = "Retrieval") -> None:
    """Add the results tab to ``demo``: query -> the chosen system's top-k images."""
    import gradio as gr

    systems = list(searcher.systems)
    if not systems:
        raise ValueError("the results tab needs at least one system")

    def on_search(query: str, system: str, k: Any) -> tuple[list[tuple[str, str]], str]:
        if not query or not query.strip():
            raise gr.Error("type a query")
        if system not in systems:
            raise gr.Error(f"unknown system {system!r}; choose one of {systems}")
        try:
            results = searcher.search(query.strip(), system, int(k))
        except ValueError as err:
            raise gr.Error(str(err)) from None
        gallery = [(row["path"], str(row.get("caption", ""))[:80]) for row in results]
        return gallery, results_table(results)

    with _inside(demo), gr.Tab(label):
        with gr.Row():
            query = gr.Textbox(label="query", placeholder="a sailing boat")
            system = gr.Dropdown(systems, value=systems[0], label="system")
            k = gr.Slider(1, 20, value=5, step=1, label="k")
        button = gr.Button("Search", variant="primary")
        gallery = gr.Gallery(label="results", columns=5, height=260)
        table = gr.Markdown()
        button.click(on_search, [query, system, k], [gallery, table], api_name="retrieval_search")


def build_run_app(run_dir: Any, votes_path: Any) -> Any:
    """A Blocks app with both tabs for a finished run (``uaes retrieval app``); not launched.

    Returns ``(demo, allowed_paths)``: the folders of the corpus images, for ``launch``.
    """
    import gradio as gr

    from uaes_hf.retrieval.searcher import RunSearcher, load_vote_tasks

    searcher = RunSearcher(run_dir)
    tasks = load_vote_tasks(run_dir)
    with gr.Blocks(title="Aesthetic retrieval") as demo:
        add_results_tab(demo, searcher)
        add_vote_tab(demo, tasks, VoteLog(votes_path))
    return demo, sorted(searcher.image_roots())
