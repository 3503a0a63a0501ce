"""The vote and results tabs on a real Gradio server, driven by gradio_client."""

from __future__ import annotations

import os
import socket

import numpy as np
import pytest
from retrieval_helpers import write_images

from uaes_hf.retrieval.index import ImageIndex
from uaes_hf.retrieval.tabs import add_results_tab, add_vote_tab, shown_first
from uaes_hf.retrieval.votes import VoteLog, VoteTask, aggregate_votes

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
WORDS = ["red", "green", "blue", "dark", "light", "square"]


class WordSearcher:
    """Images embedded by hand-made word features; queries by the words they contain."""

    systems = ("original", "finetuned")

    def __init__(self, paths: list[str], captions: list[str]) -> None:
        self.paths, self.captions = paths, captions
        self.index = ImageIndex(np.stack([self.embed(c) for c in captions]))

    @staticmethod
    def embed(text: str) -> np.ndarray:
        return np.array([text.count(w) for w in WORDS], float) + 1e-3

    def search(self, query: str, system: str, k: int) -> list[dict]:
        found = self.index.search(self.embed(query)[None], k)
        order = found.indices[0] if system == "original" else found.indices[0][::-1]
        return [
            {
                "path": self.paths[i],
                "caption": self.captions[i],
                "similarity": 0.5,
                "aesthetic": float(i),
            }
            for i in order
        ]


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    import gradio as gr
    from gradio_client import Client

    folder = tmp_path_factory.mktemp("tabs")
    paths = write_images(folder / "img", [40 * i for i in range(6)])
    captions = [
        "dark red square",
        "dark green square",
        "blue square",
        "light red",
        "light green",
        "light blue",
    ]
    tasks = [
        VoteTask(f"query {i}", tuple(paths[:3]), tuple(paths[3:]), "original", "finetuned")
        for i in range(8)
    ]
    log = VoteLog(folder / "votes.jsonl")
    with gr.Blocks() as demo:
        add_results_tab(demo, WordSearcher(paths, captions))
        add_vote_tab(demo, tasks, log)
    demo.queue().launch(
        server_name="127.0.0.1",
        server_port=_port(),
        prevent_thread_lock=True,
        quiet=True,
        allowed_paths=[str(folder)],
    )
    yield Client(demo.local_url, verbose=False), tasks, log, paths
    demo.close()


def test_vote_tab_shows_rows_and_saves_votes_as_groups(app) -> None:
    client, tasks, log, paths = app
    # One task shown with group_a first and one with group_b first.
    number_a = next(i for i, t in enumerate(tasks, 1) if shown_first(t) == "a")
    number_b = next(i for i, t in enumerate(tasks, 1) if shown_first(t) == "b")
    query, row1, row2 = client.predict(number_b, api_name="/vote_load")
    assert query == f"### Query: {tasks[number_b - 1].query}"
    assert len(row1) == len(row2) == 3
    status = client.predict(number_b, "aesthetics", "Row 1", "ann", api_name="/vote_submit")
    assert status.startswith("Saved")
    client.predict(number_a, "aesthetics", "Row 1", "ann", api_name="/vote_submit")
    client.predict(number_a, "accuracy", "Row 2", "ann", api_name="/vote_submit")
    votes = log.read()
    assert [(v["query"], v["aspect"], v["choice"]) for v in votes] == [
        (tasks[number_b - 1].query, "aesthetics", "b"),  # row 1 showed group_b
        (tasks[number_a - 1].query, "aesthetics", "a"),
        (tasks[number_a - 1].query, "accuracy", "b"),
    ]
    rows = aggregate_votes(votes)
    assert rows[0]["votes_b"] == 1 and rows[1]["votes_a"] == 1 and rows[2]["votes_b"] == 1


def test_vote_tab_rejects_bad_input(app) -> None:
    client, tasks, log, _ = app
    before = len(log.read())
    with pytest.raises(Exception, match="between 1 and 8|maximum value 8"):
        client.predict(99, api_name="/vote_load")
    with pytest.raises(Exception, match="Row 1"):
        client.predict(1, "aesthetics", None, "ann", api_name="/vote_submit")
    assert len(log.read()) == before


def test_results_tab_searches_each_system(app) -> None:
    client, *_ = app
    gallery, table = client.predict("light blue", "original", 2, api_name="/retrieval_search")
    assert len(gallery) == 2 and "light blue" in table.splitlines()[2]
    gallery, table = client.predict("light blue", "finetuned", 2, api_name="/retrieval_search")
    assert "light blue" in table.splitlines()[3]  # the toy "finetuned" system reverses order
    with pytest.raises(Exception, match="type a query"):
        client.predict("  ", "original", 2, api_name="/retrieval_search")


def test_tabs_added_to_a_finished_blocks_and_a_second_app_keep_their_endpoints(app) -> None:
    """Building a second app in the same process (here outside `with demo:`) still works."""
    import gradio as gr
    from gradio_client import Client

    _, tasks, log, _ = app
    demo = gr.Blocks()
    add_vote_tab(demo, tasks[:2], log)
    demo.queue().launch(
        server_name="127.0.0.1", server_port=_port(), prevent_thread_lock=True, quiet=True
    )
    try:
        api = Client(demo.local_url, verbose=False).view_api(return_format="dict", print_info=False)
        assert {"/vote_load", "/vote_submit"} <= set(api["named_endpoints"])
    finally:
        demo.close()
