"""Prompt versions, poem inputs (real parquet folders through `datasets`), export."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest

from uaes_hf.annotate.agreement import read_ratings
from uaes_hf.annotate.export import (
    RATING_COLUMNS,
    annotator_name,
    failure_rows,
    ratings_rows,
    write_rows,
)
from uaes_hf.annotate.judge import POEM_TASK, PoemItem
from uaes_hf.annotate.poem_inputs import load_poems
from uaes_hf.annotate.prompts import POEM_AESTHETIC_V1_TEXT, POEM_AESTHETIC_V2_TEXT, get_prompt
from uaes_hf.annotate.store import ResultStore, StoreKey, input_hash

# sha256 of the study's prompt as printed in the paper (section "Aesthetic Rating"),
# dedented by its 4-space indent: the template must stay byte-for-byte the study's.
STUDY_PROMPT_SHA256 = "ce13634b9a1be7b1ea766cd6af795ad3fcce5c7890df1bad60287c5c62131d4b"
# sha256 of poem-aesthetic-v2's template: the f-string of the study's rating script
# (poems/rating_poems.py, evaluate_poem) with `{poem_text}` written `<poem_text>`.
STUDY_SCRIPT_PROMPT_SHA256 = "d02d416060939823eb2d897bc566cebd810283e3c9301c6a6176268b82c47218"
STUDY_REPO = Path("/work/.mirror/SjJ1017+EPFL25_FDH_Universal_Aesthetics/repo")


def test_v1_is_the_study_prompt_verbatim() -> None:
    assert hashlib.sha256(POEM_AESTHETIC_V1_TEXT.encode()).hexdigest() == STUDY_PROMPT_SHA256
    assert POEM_AESTHETIC_V1_TEXT.startswith("You are an objective literary evaluator. \nTask:")
    assert POEM_AESTHETIC_V1_TEXT.count("<poem_text>") == 1


def test_v2_is_the_study_scripts_request() -> None:
    prompt = get_prompt()  # the default
    assert prompt.version == "poem-aesthetic-v2"
    assert hashlib.sha256(POEM_AESTHETIC_V2_TEXT.encode()).hexdigest() == STUDY_SCRIPT_PROMPT_SHA256
    poem = "Line one\nline two"
    messages = prompt.messages(poem)
    assert messages[0] == {
        "role": "system",
        "content": "You are an objective, concise literary critic.",
    }
    assert messages[1]["role"] == "user" and len(messages) == 2
    text = messages[1]["content"]
    assert text.startswith("\n    You are an objective literary evaluator. \n    Task:\n")
    assert '\n    Poem to evaluate:\n    """Line one\nline two"""\n\n    Scoring criteria' in text
    assert text.endswith("\n    Now perform the evaluation.\n    ")
    assert prompt.max_tokens == 700


def _study_request(poem_text: str) -> tuple[str, dict]:
    """The study script's user message and request keywords, read from its source (ast)."""
    import ast
    import subprocess

    source = subprocess.run(
        ["git", "-C", str(STUDY_REPO), "show", "HEAD:poems/rating_poems.py"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    tree = ast.parse(source)
    function = next(n for n in tree.body if getattr(n, "name", "") == "evaluate_poem")
    assign = next(n for n in function.body if isinstance(n, ast.Assign))
    expression = ast.fix_missing_locations(ast.Expression(assign.value))
    user = eval(compile(expression, "rating_poems.py", "eval"), {"poem_text": poem_text})
    call = next(
        n
        for n in ast.walk(function)
        if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "create"
    )
    keywords = {k.arg: k.value for k in call.keywords}
    request = {name: ast.literal_eval(keywords[name]) for name in ("temperature", "max_tokens")}
    request["system"] = ast.literal_eval(keywords["messages"].elts[0])  # the user one is a name
    return user, request


@pytest.mark.skipif(not STUDY_REPO.exists(), reason="the study's repository is not mirrored here")
def test_v2_equals_the_study_script_character_for_character() -> None:
    poem = 'A {braced} "poem"\n  with an indented line\n\nand a stanza'
    user, request = _study_request(poem)
    prompt = get_prompt("poem-aesthetic-v2")
    assert prompt.messages(poem) == [
        request["system"],
        {"role": "user", "content": user},
    ]
    assert prompt.max_tokens == request["max_tokens"] == 700
    assert request["temperature"] == 0.0


def test_render_puts_poem_in_place_and_unescapes_braces() -> None:
    prompt = get_prompt("poem-aesthetic-v1")
    poem = "A {{strange}} poem\n\nwith <poem_text> inside"
    text = prompt.render(poem)
    expected = (
        POEM_AESTHETIC_V1_TEXT.replace("{{", "{").replace("}}", "}").replace("<poem_text>", poem)
    )
    assert text == expected
    assert '{ "thinking": "<the concise rationale as a string>", "score": <int 1-5> }' in text
    assert prompt.messages(poem) == [{"role": "user", "content": text}]
    reask = prompt.reask_messages(poem, "bad answer", "score must be 1-5")
    assert [m["role"] for m in reask] == ["user", "assistant", "user"]
    assert "score must be 1-5" in reask[-1]["content"]
    assert '{ "thinking"' in reask[-1]["content"]


def test_unknown_version_and_empty_poem() -> None:
    with pytest.raises(
        ValueError, match="unknown prompt version 'v9'.*poem-aesthetic-v1, poem-aesthetic-v2"
    ):
        get_prompt("v9")
    with pytest.raises(ValueError, match="non-empty"):
        get_prompt().render("  ")


def _poems_repo(tmp_path: Path) -> Path:
    import pandas as pd

    repo = tmp_path / "poems_repo"
    for config, n in (("main", 5), ("aligned_5", 3)):
        folder = repo / "data" / config
        folder.mkdir(parents=True)
        frame = pd.DataFrame(
            {
                "id": [f"{config}-{i}" for i in range(n)],
                "title": [f"t{i}" for i in range(n)],
                "text": [f"Line one of poem {i}\nline two, {config}" for i in range(n)],
            }
        )
        frame.iloc[: n // 2 + 1].to_parquet(folder / "train-00000-of-00002.parquet")
        frame.iloc[n // 2 + 1 :].to_parquet(folder / "train-00001-of-00002.parquet")
    (repo / "README.md").write_text(
        "---\nconfigs:\n"
        "- config_name: main\n  data_files:\n  - split: train\n    path: data/main/*.parquet\n"
        "- config_name: aligned_5\n  data_files:\n  - split: train\n"
        "    path: data/aligned_5/*.parquet\n---\n# poems\n"
    )
    return repo


def test_load_poems_from_repo_matches_datasets(tmp_path: Path) -> None:
    import datasets

    repo = _poems_repo(tmp_path)
    for config in ("main", "aligned_5"):
        ours = load_poems(repo, config=config)
        theirs = datasets.load_dataset(str(repo), config, split="train")
        assert [(p.id, p.text) for p in ours] == list(
            zip(theirs["id"], theirs["text"], strict=False)
        )
    assert len(load_poems(repo, limit=2)) == 2
    with pytest.raises(ValueError, match=r"data/nope/.*aligned_5.*main"):
        load_poems(repo, config="nope")


def test_load_poems_from_files(tmp_path: Path) -> None:
    txt = tmp_path / "poems.txt"
    txt.write_text("Roses are red\nviolets blue\n\n---\nThe sea is calm\n---\n\n")
    poems = load_poems(txt)
    assert [p.text for p in poems] == ["Roses are red\nviolets blue", "The sea is calm"]
    assert poems[0].id == hashlib.sha256(poems[0].text.encode()).hexdigest()[:16]
    blank = tmp_path / "blank.txt"
    blank.write_text("One\nstanza\n\ntwo\n\n\nSecond poem\n")
    assert [p.text for p in load_poems(blank)] == ["One\nstanza\n\ntwo", "Second poem"]
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text(json.dumps({"id": "007", "text": "x y"}) + "\n")
    assert load_poems(jsonl) == [PoemItem("007", "x y")]
    bad = tmp_path / "p.csv"
    bad.write_text("id,body\n1,x\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['text'\]"):
        load_poems(bad)
    with pytest.raises(ValueError, match="does not exist"):
        load_poems(tmp_path / "missing.txt")
    # ids are unique: a poem pasted twice is kept once; one id with two texts is an error
    twice = tmp_path / "twice.txt"
    twice.write_text("Same poem\n---\nOther\n---\nSame poem\n")
    assert [p.text for p in load_poems(twice)] == ["Same poem", "Other"]
    shared = tmp_path / "shared.csv"
    shared.write_text("id,text\na,Same poem\nb,Same poem\n")
    assert [p.id for p in load_poems(shared)] == ["a", "b"]  # distinct ids may share a text
    clash = tmp_path / "clash.csv"
    clash.write_text("id,text\na,One\na,Two\n")
    with pytest.raises(ValueError, match="poem id 'a' appears with two different texts"):
        load_poems(clash)


def test_export_rows_and_files(tmp_path: Path) -> None:
    items = [
        PoemItem("a", "poem A"),
        PoemItem("b", "poem B"),
        PoemItem("a2", "poem A"),
        PoemItem("c", "poem C"),
        PoemItem("a", "poem A"),  # the same poem listed twice: still one row for id "a"
    ]
    with ResultStore(tmp_path / "s.sqlite") as store:

        def key(text):
            return StoreKey(POEM_TASK, "openai", "gpt-4o", "poem-aesthetic-v1", input_hash(text))

        store.put_ok(key("poem A"), "a", {"score": 4, "thinking": 'vivid, "bright"\nimagery'})
        store.put_failure(key("poem B"), "b", "invalid_output", "score 7")
        rows = ratings_rows(items, store, "openai", "gpt-4o", "poem-aesthetic-v1")
        failures = failure_rows(items, store, "openai", "gpt-4o", "poem-aesthetic-v1")
    annotator = annotator_name("openai", "gpt-4o", "poem-aesthetic-v1")
    assert [(r["id"], r["score"], r["annotator"]) for r in rows] == [
        ("a", 4, annotator),
        ("a2", 4, annotator),
    ]
    assert [(f["id"], f["reason"]) for f in failures] == [("b", "invalid_output"), ("c", "missing")]
    for name in ("ratings.csv", "ratings.jsonl"):
        path = write_rows(rows, tmp_path / name, RATING_COLUMNS)
        assert read_ratings(path) == {"a": 4, "a2": 4}
    with (tmp_path / "ratings.csv").open(newline="") as fh:
        back = list(csv.DictReader(fh))
    assert list(back[0]) == list(RATING_COLUMNS)
    assert back[0]["rationale"] == 'vivid, "bright"\nimagery'
    assert annotator_name("local", "smollm2-135m-instruct", "poem-aesthetic-v1").endswith("(weak)")


def test_ratings_file_flows_into_poems_dataset_hook(tmp_path: Path) -> None:
    """The CSV/JSONL we write is what the poems dataset's annotation hook reads."""
    from uaes_hf.data.annotations import merge_annotations
    from uaes_hf.data.records import PoemRecord

    def record(poem_id: str) -> PoemRecord:
        return PoemRecord(poem_id, "T", "A", "sonnet", "formatted", "a b", 2, 1, 1.0)

    annotator = annotator_name("openai", "gpt-4o", "poem-aesthetic-v1")
    rows = [
        {"id": "a", "score": 4, "rationale": 'vivid, "bright"\nimagery', "annotator": annotator},
        {"id": "b", "score": 1, "rationale": "flat", "annotator": annotator},
    ]
    for name in ("ratings.csv", "ratings.jsonl"):
        path = write_rows(rows, tmp_path / name, RATING_COLUMNS)
        merged, stats = merge_annotations([record("a"), record("b"), record("c")], path)
        assert stats == {"annotated": 2, "unannotated": 1, "unmatched": 0}
        got = [(r.aesthetic_score, r.aesthetic_rationale, r.annotator) for r in merged]
        assert got == [
            (4, 'vivid, "bright"\nimagery', annotator),
            (1, "flat", annotator),
            (
                None,
                None,
                None,
            ),
        ]


def test_ratings_of_the_old_prompt_are_not_reused(tmp_path: Path) -> None:
    """A store that rated a poem with poem-aesthetic-v1 asks again under v2 (the default)."""
    from openai_server import FakeOpenAIServer

    from uaes_hf.annotate.client import ChatClient, ChatConfig
    from uaes_hf.annotate.judge import OpenAIRatingBackend, judge_poems

    poem = PoemItem("p1", "Old prompt, old score\nnew prompt, new ask")
    v1_key = StoreKey(POEM_TASK, "openai", "gpt-4o", "poem-aesthetic-v1", input_hash(poem.text))
    with FakeOpenAIServer() as server, ResultStore(tmp_path / "r.sqlite") as store:
        store.put_ok(v1_key, "p1", {"score": 1, "thinking": "v1"})
        client = ChatClient(ChatConfig(base_url=server.base_url), api_key="sk-test")
        summary = judge_poems([poem], store, OpenAIRatingBackend(client), progress=False)
        (request,) = server.chat_requests()
        rows = {r.key.prompt_version: r for r in store.results()}
        again = judge_poems([poem], store, OpenAIRatingBackend(client), progress=False)
    assert (summary.done, summary.cached) == (1, 0) and (again.done, again.cached) == (0, 1)
    assert request["roles"] == ["system", "user"] and request["max_tokens"] == 700
    assert rows["poem-aesthetic-v1"].payload == {"score": 1, "thinking": "v1"}  # untouched
    assert rows["poem-aesthetic-v2"].payload["thinking"].startswith("Imagery and rhythm")
