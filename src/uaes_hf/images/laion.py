"""The LAION "improved aesthetic predictor": CLIP ViT-L/14 image embedding -> MLP -> score.

The head was trained on AVA + SAC + LAION-logos ratings; weights come from the Hugging Face
Hub (or local copies) and are loaded on first use. Not available offline.

Example:
    >>> LaionPredictorScorer().name
    'laion-aesthetic:sac+logos+ava1-l14-linearMSE'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from uaes_hf.images.levels import AVA_LEVEL_CUTS, level_from_cuts, validate_cuts

LAION_CLIP_MODEL = "openai/clip-vit-large-patch14"
LAION_HEAD_REPO = "camenduru/improved-aesthetic-predictor"
LAION_HEAD_FILE = "sac+logos+ava1-l14-linearMSE.pth"


def laion_head(input_size: int = 768) -> Any:
    """The MLP head of the improved aesthetic predictor (same layer layout as its weights).

    Example:
        >>> laion_head()(__import__("torch").zeros(2, 768)).shape
        torch.Size([2, 1])
    """
    import torch.nn as nn

    class AestheticHead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            # No activations: this is the published linear-MSE predictor's exact layout.
            self.layers = nn.Sequential(
                nn.Linear(input_size, 1024),
                nn.Dropout(0.2),
                nn.Linear(1024, 128),
                nn.Dropout(0.2),
                nn.Linear(128, 64),
                nn.Dropout(0.1),
                nn.Linear(64, 16),
                nn.Linear(16, 1),
            )

        def forward(self, x: Any) -> Any:
            return self.layers(x)

    return AestheticHead()


@dataclass
class LaionPredictorScorer:
    """LAION improved aesthetic predictor: L2-normalised CLIP image embedding -> MLP -> score.

    ``clip_model`` is a Hub id or a local folder; ``head`` is ``"repo_id:filename"`` on the
    Hub or a local ``.pth``/``.safetensors`` path. Weights load on first use. Offline
    (``HF_HUB_OFFLINE=1``) without local copies this raises one clear ``RuntimeError``.

    Example (scoring itself needs the weights; naming and levels do not):
        >>> scorer = LaionPredictorScorer()
        >>> scorer.name, scorer.level(5.83)
        ('laion-aesthetic:sac+logos+ava1-l14-linearMSE', 3)
    """

    clip_model: str = LAION_CLIP_MODEL
    head: str = f"{LAION_HEAD_REPO}:{LAION_HEAD_FILE}"
    device: str = "cpu"
    batch_size: int = 16
    level_cuts: tuple[float, ...] = AVA_LEVEL_CUTS
    _loaded: tuple[Any, Any, Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        validate_cuts(self.level_cuts)
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")

    @property
    def name(self) -> str:
        return f"laion-aesthetic:{Path(self.head.split(':')[-1]).stem}"

    def _head_file(self) -> Path:
        local = Path(self.head)
        if local.is_file():
            return local
        repo, _, filename = self.head.partition(":")
        if not filename:
            raise ValueError(f"head must be a local file or 'repo_id:filename', got {self.head!r}")
        from huggingface_hub import hf_hub_download

        return Path(hf_hub_download(repo, filename))

    def load(self) -> tuple[Any, Any, Any]:
        """Load (processor, CLIP vision model, head) once."""
        if self._loaded is not None:
            return self._loaded
        import torch

        try:
            from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

            processor = CLIPImageProcessor.from_pretrained(self.clip_model)
            vision = CLIPVisionModelWithProjection.from_pretrained(self.clip_model)
            head_path = self._head_file()
        except Exception as err:  # offline / unknown repo: one message, no deep traceback
            raise RuntimeError(
                f"the LAION aesthetic predictor needs {self.clip_model} and the head "
                f"{self.head} from the Hugging Face Hub (or local copies), and loading failed: "
                f"{type(err).__name__}: {str(err)[:200]}. Offline, use --scorer classical "
                "(a heuristic baseline) or --scorer vlm with a reachable endpoint."
            ) from None
        if head_path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(head_path))
        else:
            state = torch.load(str(head_path), map_location="cpu", weights_only=True)
        dim = int(vision.config.projection_dim)
        head = laion_head(dim)
        try:
            head.load_state_dict(state)
        except RuntimeError as err:
            raise ValueError(
                f"{head_path} does not fit the aesthetic head for a {dim}-d CLIP embedding: "
                f"{str(err)[:200]}"
            ) from None
        vision.to(self.device).eval()
        head.to(self.device).eval()
        self._loaded = (processor, vision, head)
        return self._loaded

    def score(self, images: Sequence[Any]) -> list[float]:
        """Predicted mean AVA-style rating for each image."""
        import torch

        processor, vision, head = self.load()
        scores: list[float] = []
        with torch.inference_mode():
            for start in range(0, len(images), self.batch_size):
                batch = [img.convert("RGB") for img in images[start : start + self.batch_size]]
                pixels = processor(images=batch, return_tensors="pt")["pixel_values"]
                emb = vision(pixel_values=pixels.to(self.device)).image_embeds
                emb = emb / emb.norm(dim=-1, keepdim=True).clamp_min(1e-12)
                scores += [round(float(s), 4) for s in head(emb.float()).squeeze(-1).cpu()]
        return scores

    def level(self, score: float) -> int:
        """Level 1-5 with the AVA-centred cut points (:data:`AVA_LEVEL_CUTS`)."""
        return level_from_cuts(score, self.level_cuts)
