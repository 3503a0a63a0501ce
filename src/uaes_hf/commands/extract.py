"""``uaes extract``: features of every layer of each model into the feature store.

The options are those of ``python -m uaes_hf.extract`` (one shared argument builder);
this module only parses and calls the library.
"""

from __future__ import annotations

from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``extract`` subcommand."""
    from uaes_hf.extract.run import add_arguments, run_from_args

    parser = subparsers.add_parser(
        "extract",
        help="extract all-layer features (or perplexity) of texts/images into a feature store",
        description=(
            "Extract pooled hidden states of every layer of each model for one dataset split "
            "into a feature store (safetensors + meta.json). Resumable: finished shards are "
            "never recomputed. For several GPUs or CPU processes run "
            "`accelerate launch --multi_gpu --num_processes N -m uaes_hf.extract` with the same "
            "options (without CUDA the processes join on the CPU with gloo; a launch whose "
            "processes cannot form one group stops before any work)."
        ),
    )
    add_arguments(parser)
    parser.set_defaults(func=run_from_args)
