"""Configuration of ``uaes retrieval run``: typed sections, YAML overrides, clear errors.

Defaults run everything offline on packaged parts (the offline encoder, SmolLM2 rephrasing,
the classical aesthetic heuristic, the proxy judge). A YAML file overrides only the keys it
names; unknown keys and wrong types raise a ``ValueError`` naming the key. For a Hub CLIP
and a real VLM judge, see ``hub_example.yaml`` next to this module (and the model card).

Example:
    >>> cfg = config_from_dict({"eval": {"k": 3}})
    >>> cfg.eval.k, cfg.encoder.kind
    (3, 'packaged')
    >>> config_from_dict({"eval": {"kk": 3}})
    Traceback (most recent call last):
    ...
    ValueError: unknown config key 'eval.kk'; expected one of: k, n_bootstrap, seed, examples
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from uaes_hf.retrieval.finetune import FinetuneConfig
from uaes_hf.retrieval.lit import LiTConfig
from uaes_hf.typed_config import build_dataclass


@dataclass(frozen=True)
class CorpusSection:
    """Which images: sources (``openclipart``, ``embedded_photos``, ``imagefolder:<path>``)."""

    sources: tuple[str, ...] = ("openclipart", "embedded_photos")
    max_items: int = 1500
    per_category: int = 40
    seed: int = 0


@dataclass(frozen=True)
class EncoderSection:
    """``packaged`` (offline towers + trained linear heads) or ``hf`` (CLIP/SigLIP)."""

    kind: Literal["packaged", "hf"] = "packaged"
    model: str | None = None
    revision: str | None = None
    image_size: int = 224
    batch_size: int = 32
    device: str = "cpu"


@dataclass(frozen=True)
class QueriesSection:
    """Query list (``None``: the packaged one) and the held-out share."""

    file: str | None = None
    held_out_fraction: float = 0.4
    limit: int | None = None


@dataclass(frozen=True)
class RephraseSection:
    """The rephrasing LLM: ``local`` (packaged), ``openai`` (any compatible endpoint), ``none``."""

    backend: Literal["local", "openai", "none"] = "local"
    model: str = "smollm2-135m"
    base_url: str | None = None
    max_new_tokens: int = 32
    batch_size: int = 16
    concurrency: int = 4


@dataclass(frozen=True)
class ScorerSection:
    """Aesthetic scorer: ``classical`` (offline heuristic), ``laion`` (Hub), ``vlm``."""

    name: Literal["classical", "laion", "vlm"] = "classical"
    model: str | None = None
    base_url: str | None = None


@dataclass(frozen=True)
class PreferenceSection:
    """Candidate retrieval and the semantic x aesthetic grid of the preference pairs."""

    top_k: int = 32
    u: int = 4
    v: int = 4
    stride: int = 2
    query: Literal["rephrased", "original"] = "rephrased"


@dataclass(frozen=True)
class JudgeSection:
    """The pairwise judge: ``proxy`` (offline) or ``vlm``; margins are the proxy's."""

    backend: Literal["proxy", "vlm"] = "proxy"
    model: str = "gpt-4o"
    base_url: str | None = None
    concurrency: int = 4
    margin_accuracy: float = 0.02
    margin_aesthetics: float = 0.2
    margin_diversity: float = 0.02
    margin_overall: float = 0.2


@dataclass(frozen=True)
class EvalSection:
    """Evaluation: results per row (k), bootstrap, number of example rows in the report."""

    k: int = 5
    n_bootstrap: int = 2000
    seed: int = 0
    examples: int = 4


@dataclass(frozen=True)
class RetrievalConfig:
    """All sections; ``store`` is the result-store path (default under ``$UAES_HOME``).

    ``cpu_threads``: torch CPU threads for the run. 1 by default: on a shared 2-core machine
    one thread was 2-3x faster in wall time than two for the CNN and the LM (extra OpenMP
    threads spin while the cores are busy elsewhere); raise it on a dedicated many-core
    machine, or ``null`` for torch's default.
    """

    corpus: CorpusSection = field(default_factory=CorpusSection)
    encoder: EncoderSection = field(default_factory=EncoderSection)
    lit: LiTConfig = field(default_factory=LiTConfig)
    queries: QueriesSection = field(default_factory=QueriesSection)
    rephrase: RephraseSection = field(default_factory=RephraseSection)
    scorer: ScorerSection = field(default_factory=ScorerSection)
    preference: PreferenceSection = field(default_factory=PreferenceSection)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)
    judge: JudgeSection = field(default_factory=JudgeSection)
    eval: EvalSection = field(default_factory=EvalSection)
    store: str | None = None
    votes: str | None = None
    cpu_threads: int | None = 1

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def config_from_dict(data: dict[str, Any] | None) -> RetrievalConfig:
    """Defaults overridden by ``data`` (nested mappings), validated."""
    cfg = build_dataclass(RetrievalConfig, data or {}, "")
    if cfg.encoder.kind == "hf" and not cfg.encoder.model:
        raise ValueError("encoder.model must name a Hub CLIP/SigLIP when encoder.kind is 'hf'")
    if cfg.eval.k < 1 or cfg.eval.k > cfg.preference.top_k:
        raise ValueError(f"eval.k must be in [1, preference.top_k], got {cfg.eval.k}")
    if cfg.cpu_threads is not None and cfg.cpu_threads < 1:
        raise ValueError(f"cpu_threads must be >= 1 or null, got {cfg.cpu_threads}")
    if not 0.0 < cfg.queries.held_out_fraction < 1.0:
        raise ValueError("queries.held_out_fraction must be in (0, 1)")
    return cfg


def load_config(path: str | Path | None = None) -> RetrievalConfig:
    """The defaults, or a YAML file's overrides of them."""
    import yaml

    if path is None:
        return config_from_dict({})
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML: {err}") from None
    return config_from_dict(data)


def hub_example_text() -> str:
    """The packaged example config for a Hub CLIP and a real VLM judge."""
    return resources.files("uaes_hf.retrieval").joinpath("hub_example.yaml").read_text("utf-8")
