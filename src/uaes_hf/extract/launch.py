"""Feature extraction under ``accelerate launch``: the command, running it, reading it back.

The experiment's extract stage uses this for text models when ``extract.num_processes`` > 1:
the texts are written as a small parquet dataset, ``accelerate launch -m uaes_hf.extract``
computes them into a feature store (shards split across the processes, resumable), and the
entry is read back and checked row by row against the texts' ids.

Example:
    >>> from pathlib import Path
    >>> cmd, env = accelerate_launch_command(
    ...     "all-minilm-l6-v2", Path("d"), Path("s"), num_processes=2, pooling="mean",
    ...     batch_size=8, max_tokens=128, device="cpu", n_items=10)
    >>> cmd[cmd.index("-m", 3) + 1]
    'uaes_hf.extract'
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np


def _free_port() -> int:
    """A TCP port free right now, so concurrent launches do not collide on 29500."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def accelerate_launch_command(
    model: str,
    dataset_dir: Path,
    store_dir: Path,
    *,
    num_processes: int,
    pooling: str,
    batch_size: int,
    max_tokens: int,
    device: str = "auto",
    n_items: int,
    show_progress: bool = False,
) -> tuple[list[str], dict[str, str]]:
    """The ``accelerate launch ... -m uaes_hf.extract`` command (and its environment).

    CUDA GPUs get one process each (``device`` ``auto`` or ``cuda``); without CUDA, or with
    ``device: cpu``, the processes run on the CPU (gloo, ``ACCELERATE_USE_CPU=true``). The
    items are cut into ``num_processes`` shards (at most 1024 items each), so every process
    has work.

    Raises:
        ValueError: ``num_processes`` < 2, more processes than visible GPUs, or a device
            that cannot be split across processes.

    Example:
        >>> cmd, env = accelerate_launch_command(
        ...     "all-minilm-l6-v2", Path("d"), Path("s"), num_processes=2, pooling="mean",
        ...     batch_size=8, max_tokens=128, device="cpu", n_items=10)
        >>> cmd[cmd.index("--num_processes") + 1], env["ACCELERATE_USE_CPU"]
        ('2', 'true')
    """
    import os

    if num_processes < 2:
        raise ValueError(f"num_processes must be >= 2 for accelerate launch, got {num_processes}")
    if device == "cpu":
        use_cuda = False
    elif device == "auto" or device.startswith("cuda"):
        import torch

        use_cuda = torch.cuda.is_available()
        if device != "auto" and not use_cuda:
            raise ValueError(f"extract.device is {device!r} but CUDA is not available")
        n_gpus = torch.cuda.device_count() if use_cuda else 0
        if use_cuda and n_gpus < num_processes:
            raise ValueError(
                f"extract.num_processes is {num_processes} but only {n_gpus} CUDA GPU(s) are "
                f"visible; set it to at most {n_gpus} (one process per GPU)"
            )
    else:
        raise ValueError(
            f"extract.num_processes > 1 needs extract.device auto, cuda or cpu, got {device!r}"
        )
    shard_size = max(1, min(1024, -(-n_items // num_processes)))
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        # --multi_gpu picks the torch.distributed launcher; with ACCELERATE_USE_CPU the
        # processes use the CPU and gloo (--cpu alone would start a single process).
        "--multi_gpu",
        "--num_processes",
        str(num_processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(_free_port()),
        "-m",
        "uaes_hf.extract",
        "--dataset",
        str(dataset_dir),
        "--column",
        "text",
        "--id-column",
        "id",
        "--models",
        model,
        "--out",
        str(store_dir),
        "--pooling",
        pooling,
        "--batch-size",
        str(batch_size),
        "--max-length",
        str(max_tokens),
        "--shard-size",
        str(shard_size),
        *([] if show_progress else ["--no-progress"]),
    ]
    env = dict(os.environ)
    if not use_cuda:
        env["ACCELERATE_USE_CPU"] = "true"
    return command, env


def _run_streaming(command: list[str], env: dict[str, str], echo: bool) -> tuple[int, str]:
    """Run ``command``; echo its output when ``echo``; return (exit code, output tail)."""
    import os
    import subprocess

    tail = bytearray()
    with subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as process:
        assert process.stdout is not None
        while chunk := os.read(process.stdout.fileno(), 65536):
            if echo:
                sys.stderr.buffer.write(chunk)
                sys.stderr.flush()
            tail = (tail + chunk)[-20000:]
        code = process.wait()
    return code, tail.decode("utf-8", "replace")


def _error_lines(output: str) -> list[str]:
    """The exception lines of the ranks' output (the launcher's own summary left out).

    Example:
        >>> _error_lines("x\\n[rank1]: OSError: no model\\nuaes extract: error: bad\\n")
        ['OSError: no model', 'uaes extract: error: bad']
    """
    import re

    pattern = re.compile(
        r"^(?:\[rank\d+\]:\s*)?((?:[\w.]*(?:Error|Exception)|uaes \w+: error):.*)$"
    )
    found: list[str] = []
    for line in output.splitlines():
        match = pattern.match(line.strip())
        if match and "ChildFailedError" not in line and match.group(1) not in found:
            found.append(match.group(1))
    return found[-5:] or ["(none recognised; see the output below)"]


def extract_text_group_accelerate(
    model: str,
    texts: list[str],
    work_dir: Path,
    *,
    num_processes: int,
    pooling: str = "mean",
    batch_size: int = 8,
    max_tokens: int = 128,
    device: str = "auto",
    show_progress: bool = False,
    fresh: bool = False,
) -> tuple[list[np.ndarray], dict[str, Any]]:
    """All-layer pooled features of ``texts`` (``N x D_l`` per layer), sharded over processes,
    and run info (``truncated_rows``: the positions of the texts cut at the token cap), as
    the in-process extractor returns them.

    Writes the texts as a parquet dataset (columns ``id``, ``text``) under ``work_dir``, runs
    :func:`accelerate_launch_command` into a feature store there and reads it back, checking
    that the rows come back in the texts' order. ``work_dir`` is kept if the launch fails
    (a rerun resumes at the next unfinished shard) and removed after a success; ``fresh``
    removes what an earlier launch left there first (nothing is resumed). The caller makes
    sure one process at a time uses ``work_dir`` (the extract stage holds its checkpoint's
    lock).

    Raises:
        RuntimeError: the launch failed (the message names the command and shows the end
            of its output).

    Example:
        >>> layers, info = extract_text_group_accelerate(
        ...     "all-minilm-l6-v2", ["a poem", "a text"], Path("tmp"), num_processes=2
        ... )  # doctest: +SKIP
        >>> layers[-1].shape  # doctest: +SKIP
        (2, 384)
    """
    import os
    import shlex
    import shutil
    import tempfile

    import pandas as pd

    from uaes_hf.extract.registry import expand_models
    from uaes_hf.features.store import FeatureStore

    if not texts:
        raise ValueError("no texts to extract")
    work_dir = Path(work_dir)
    if fresh:
        shutil.rmtree(work_dir, ignore_errors=True)
    dataset_dir = work_dir / "dataset"
    dataset_dir.mkdir(parents=True, exist_ok=True)
    # Integer ids 0..N-1: the order check below does not depend on the texts being unique.
    frame = pd.DataFrame({"id": np.arange(len(texts), dtype=np.int64), "text": list(texts)})
    fd, tmp = tempfile.mkstemp(prefix=".train.parquet.", suffix=".tmp", dir=dataset_dir)
    os.close(fd)
    try:
        frame.to_parquet(tmp, index=False)
        os.replace(tmp, dataset_dir / "train.parquet")
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    command, env = accelerate_launch_command(
        model,
        dataset_dir,
        work_dir / "store",
        num_processes=num_processes,
        pooling=pooling,
        batch_size=batch_size,
        max_tokens=max_tokens,
        device=device,
        n_items=len(texts),
        show_progress=show_progress,
    )
    print(
        f"uaes: extract: {model} on {len(texts)} texts with {num_processes} processes",
        file=sys.stderr,
        flush=True,
    )
    code, output = _run_streaming(command, env, echo=show_progress)
    if code != 0:
        raise RuntimeError(
            f"feature extraction of {model!r} under accelerate failed (exit code {code}); "
            f"command: {shlex.join(command)}\nerrors: {' | '.join(_error_lines(output))}"
            f"\n--- end of its output ---\n{output[-3000:]}"
        )
    key = expand_models([model])[0].key
    stored = FeatureStore(work_dir / "store").load(str(dataset_dir), key, pooling)
    if stored.ids != [str(i) for i in range(len(texts))]:
        raise RuntimeError(
            f"features of {model!r} from accelerate came back for ids {stored.ids[:5]}..., "
            f"not the {len(texts)} texts in order"
        )
    layers = [np.asarray(stored.layer(i), np.float32) for i in range(stored.n_layers)]
    info = {"truncated_rows": [int(i) for i in stored.meta.get("truncated_rows", [])]}
    shutil.rmtree(work_dir, ignore_errors=True)
    return layers, info
