"""Which process of a launch this is: rank, world size and barrier, or a refusal.

``accelerate launch --multi_gpu --num_processes N -m uaes_hf.extract`` starts N processes.
They split the shards only if they join one process group; :func:`init_distributed` joins it
(NCCL on GPUs, gloo on the CPU when there is no CUDA GPU, even without
``ACCELERATE_USE_CPU=true``) and stops, before any work, when the launch cannot be split.

Example:
    >>> Distributed().world, launcher_world_size({"WORLD_SIZE": "4"})
    (1, 4)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any


@dataclass
class Distributed:
    """Rank, world size and barrier of the current run (one process without Accelerate)."""

    rank: int = 0
    world: int = 1
    accelerator: Any = None

    def barrier(self) -> None:
        if self.accelerator is not None and self.world > 1:
            self.accelerator.wait_for_everyone()

    @property
    def device(self) -> str | None:
        if self.accelerator is None:
            return None
        return str(self.accelerator.device)


def launcher_world_size(env: Mapping[str, str] | None = None) -> int:
    """How many processes a launcher (``accelerate launch``, ``torchrun``) started: its
    ``WORLD_SIZE``, 1 without one.

    Example:
        >>> launcher_world_size({"WORLD_SIZE": "2", "RANK": "0"}), launcher_world_size({})
        (2, 1)
    """
    env = os.environ if env is None else env
    raw = env.get("WORLD_SIZE")
    if raw is None or raw == "":
        return 1
    try:
        size = int(raw)
    except ValueError:
        raise ValueError(f"WORLD_SIZE must be a positive integer, got {raw!r}") from None
    if size < 1:
        raise ValueError(f"WORLD_SIZE must be a positive integer, got {raw!r}")
    return size


def check_world(launched: int, joined: int) -> None:
    """Refuse to work when the launcher started ``launched`` processes but this one joined a
    group of ``joined``: every process would compute every shard and write the same files.

    Example:
        >>> check_world(2, 2)
        >>> check_world(2, 1)
        Traceback (most recent call last):
        ...
        ValueError: the launcher started 2 processes (WORLD_SIZE=2) but this one joined a group of 1, so each would compute every shard; on a machine without CUDA GPUs set ACCELERATE_USE_CPU=true (CPU processes with gloo), or pass --device cpu; with GPUs, launch at most one process per GPU
    """
    if launched > 1 and joined != launched:
        raise ValueError(
            f"the launcher started {launched} processes (WORLD_SIZE={launched}) but this one "
            f"joined a group of {joined}, so each would compute every shard; on a machine "
            "without CUDA GPUs set ACCELERATE_USE_CPU=true (CPU processes with gloo), or pass "
            "--device cpu; with GPUs, launch at most one process per GPU"
        )


def init_distributed(use_accelerate: bool = True, device: str | None = None) -> Distributed:
    """Join the process group the launcher started (else a single process).

    Several processes (``WORLD_SIZE`` > 1) with no CUDA GPU, or ``device="cpu"``, join on the
    CPU with gloo (``Accelerator(cpu=True)``), so ``accelerate launch --multi_gpu
    --num_processes N`` splits the shards even without ``ACCELERATE_USE_CPU=true``. A launch
    that still cannot be split (more processes than GPUs, ``--no-accelerate`` under a
    launcher, a group smaller than the launch) stops here, before any work, with a
    ValueError that says what to set.
    """
    launched = launcher_world_size()
    if not use_accelerate:
        if launched > 1:
            raise ValueError(
                f"--no-accelerate under a launcher that started {launched} processes "
                f"(WORLD_SIZE={launched}): each would compute every shard; drop --no-accelerate"
            )
        return Distributed()
    import torch
    from accelerate import Accelerator
    from accelerate.utils import InitProcessGroupKwargs

    cuda = torch.cuda.is_available()
    cpu = device == "cpu" or (launched > 1 and not cuda)
    if launched > 1 and not cpu and not _env_flag("ACCELERATE_USE_CPU"):
        per_node = int(os.environ.get("LOCAL_WORLD_SIZE") or launched)
        if torch.cuda.device_count() < per_node:
            raise ValueError(
                f"the launcher started {per_node} processes on this machine but only "
                f"{torch.cuda.device_count()} CUDA GPU(s) are visible: launch at most "
                f"{torch.cuda.device_count()} (--num_processes), or set "
                "ACCELERATE_USE_CPU=true to run the processes on the CPU"
            )
    # Long extractions: ranks may wait hours for each other at the merge barrier.
    accelerator = Accelerator(
        cpu=cpu, kwargs_handlers=[InitProcessGroupKwargs(timeout=timedelta(hours=24))]
    )
    check_world(launched, accelerator.num_processes)
    return Distributed(accelerator.process_index, accelerator.num_processes, accelerator)


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")
