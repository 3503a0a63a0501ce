"""Per-sample perplexity and bits-per-byte of texts under a causal language model.

The study used GPT-2 perplexity as a measure of how "rare" a text is; any causal LM works
here (offline: the packaged SmolLM2 and Gemma-3). Texts are batched by length as for
features. The loss is computed from the body's last hidden states through the LM head a
chunk of positions at a time, so a 262k-token vocabulary never needs a full
(batch x length x vocab) logits tensor in memory.

Conventions: a BOS token is prepended when the tokenizer does not add one (so every token
of the text is predicted); ``perplexity = exp(nll / n_predicted)``;
``bits_per_byte = nll / (ln 2 * n_bytes)`` with ``n_bytes`` the UTF-8 size of the scored
text (of its kept part when truncated). ``max_length`` is capped at the model's position
limit (GPT-2: 1024), as for features.

Example:
    >>> scorer = PerplexityScorer("smollm2-135m")  # doctest: +SKIP
    >>> columns, info = scorer(["Shall I compare thee to a summer's day?"])  # doctest: +SKIP
    >>> perplexity_table(columns)["perplexity"].round(1).tolist()  # doctest: +SKIP
    [31.2]
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from uaes_hf.extract.batching import length_sorted_order, positions_from_mask, run_with_oom_backoff
from uaes_hf.extract.registry import resolve_model
from uaes_hf.extract.text import (
    local_source,
    packaged_revision,
    resolve_device,
    resolve_dtype,
    validate_texts,
)
from uaes_hf.extract.token_limits import cap_max_length, loaded_position_limit

# Stored as four one-wide "layers", so perplexity reuses the feature store's shards/resume.
PERPLEXITY_COLUMNS = ("nll_nats", "n_predicted_tokens", "n_bytes", "truncated")
PERPLEXITY_POOLING = "perplexity"


class PerplexityScorer:
    """Summed negative log-likelihood, token and byte counts per text for a causal LM.

    Args:
        model: registry key, Hub id or local path of a causal LM.
        batch_size: texts per forward pass; halved on out-of-memory.
        max_length: tokens kept per text (including the BOS); longer texts are truncated.
            Capped at the model's position limit (``position_limit``).
        chunk_size: positions sent through the LM head at once (bounds memory).
        prepend_bos: add the BOS (or EOS) token when the tokenizer adds none.
    """

    def __init__(
        self,
        model: str,
        *,
        batch_size: int = 8,
        max_length: int = 1024,
        chunk_size: int = 256,
        device: str | None = None,
        dtype: str = "auto",
        revision: str | None = None,
        prepend_bos: bool = True,
        progress: bool = True,
    ) -> None:
        if batch_size < 1 or max_length < 2 or chunk_size < 1:
            raise ValueError("batch_size and chunk_size must be >= 1 and max_length >= 2")
        self.spec = resolve_model(model, kind="hf_text")
        self.batch_size = batch_size
        self.max_length = max_length
        self.chunk_size = chunk_size
        self.device = resolve_device(device)
        self.torch_dtype = resolve_dtype(dtype, self.device)
        self.revision = revision or self.spec.revision
        self.prepend_bos = prepend_bos
        self.progress = progress
        self.pooling = PERPLEXITY_POOLING
        self._load()

    def _load(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        source = local_source(self.spec)
        self.tokenizer = AutoTokenizer.from_pretrained(source, revision=self.revision)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self.model = AutoModelForCausalLM.from_pretrained(
            source, revision=self.revision, dtype=self.torch_dtype
        )
        self.model.to(self.device).eval()
        self.body = self.model.base_model
        self.head = self.model.get_output_embeddings()
        if self.head is None:
            raise ValueError(f"{self.spec.key} has no LM head; perplexity needs a causal LM")
        self.softcap = getattr(self.model.config, "final_logit_softcapping", None)
        self.model_revision = (
            getattr(self.model.config, "_commit_hash", None)
            or self.revision
            or packaged_revision(self.spec)
        )
        self.bos_id = self.tokenizer.bos_token_id
        if self.bos_id is None:
            self.bos_id = self.tokenizer.eos_token_id
        limit, source = loaded_position_limit(self.model.config, self.tokenizer)
        self.requested_max_length = self.max_length
        self.position_limit = limit
        self.max_length = max(2, cap_max_length(self.max_length, limit))
        if self.max_length < self.requested_max_length:
            print(
                f"uaes: {self.spec.key}: max_tokens {self.requested_max_length} capped at "
                f"{limit} ({source}); longer texts are truncated and counted",
                file=sys.stderr,
            )
        self._check_head_path()

    def _check_head_path(self) -> None:
        """Verify once that body + head reproduce the model's own logits (e.g. scaling)."""
        import torch

        ids = torch.tensor([[self.bos_id or 0, 1, 2, 3]], device=self.device)
        with torch.inference_mode():
            expected = self.model(input_ids=ids).logits.float()
            hidden = self.body(input_ids=ids).last_hidden_state
            got = self._logits(hidden)
        if not torch.allclose(expected, got, rtol=1e-3, atol=1e-3 * expected.abs().max().item()):
            raise ValueError(
                f"{self.spec.key}: its logits are not head(last hidden state); "
                "chunked perplexity does not support this architecture"
            )

    def _logits(self, hidden: Any) -> Any:
        import torch

        logits = self.head(hidden).float()
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        return logits

    def tokenize(self, texts: Sequence[str]) -> tuple[list[list[int]], list[int], list[bool]]:
        """Token ids (BOS-prefixed, truncated), UTF-8 byte counts and truncation flags."""
        texts = validate_texts(texts)
        rows = self.tokenizer(list(texts), add_special_tokens=True)["input_ids"]
        ids, n_bytes, truncated = [], [], []
        for text, row in zip(texts, rows, strict=True):
            if self.prepend_bos and self.bos_id is not None and (not row or row[0] != self.bos_id):
                row = [self.bos_id, *row]
            cut = len(row) > self.max_length
            if cut:
                row = row[: self.max_length]
                kept = self.tokenizer.decode(row, skip_special_tokens=True)
                n_bytes.append(len(kept.encode("utf-8")))
            else:
                n_bytes.append(len(text.encode("utf-8")))
            if len(row) < 2:
                raise ValueError(f"text {text[:30]!r} has fewer than 2 tokens; nothing to predict")
            ids.append(row)
            truncated.append(cut)
        return ids, n_bytes, truncated

    def __call__(self, texts: Sequence[str]) -> tuple[list[np.ndarray], dict[str, Any]]:
        """Per text: columns :data:`PERPLEXITY_COLUMNS`, each an (n, 1) float32 array."""
        import torch

        ids, n_bytes, truncated = self.tokenize(texts)
        nll = np.zeros(len(ids), np.float64)
        n_pred = np.zeros(len(ids), np.int64)
        order = length_sorted_order([len(row) for row in ids])
        started = time.perf_counter()
        stats = {"n_tokens": 0, "n_positions": 0, "n_batches": 0}
        from tqdm.auto import tqdm

        bar = tqdm(
            total=len(ids), desc=f"ppl {self.spec.key}", disable=not self.progress, leave=False
        )

        def step(batch: list[int]) -> None:
            encoded = self.tokenizer.pad(
                {"input_ids": [ids[i] for i in batch]}, return_tensors="pt"
            ).to(self.device)
            input_ids, mask = encoded["input_ids"], encoded["attention_mask"]
            kwargs = {"input_ids": input_ids, "attention_mask": mask}
            if "position_ids" in _forward_parameters(self.body):
                kwargs["position_ids"] = positions_from_mask(mask)
            with torch.inference_mode():
                hidden = self.body(**kwargs).last_hidden_state
                valid = mask[:, 1:].bool() & mask[:, :-1].bool()
                rows, cols = valid.nonzero(as_tuple=True)
                targets = input_ids[:, 1:][rows, cols]
                sums = torch.zeros(len(batch), dtype=torch.float64, device=hidden.device)
                for start in range(0, len(rows), self.chunk_size):
                    part = slice(start, start + self.chunk_size)
                    logits = self._logits(hidden[rows[part], cols[part]])
                    token_nll = torch.logsumexp(logits, dim=-1) - logits.gather(
                        1, targets[part, None]
                    ).squeeze(1)
                    sums.index_add_(0, rows[part], token_nll.double())
            nll[batch] = sums.cpu().numpy()
            n_pred[batch] = valid.sum(dim=1).cpu().numpy()
            stats["n_tokens"] += int(mask.sum())
            stats["n_positions"] += int(mask.numel())
            stats["n_batches"] += 1
            bar.update(len(batch))

        def backoff(size: int) -> None:
            print(f"uaes: out of memory; batch size now {size}", file=sys.stderr)

        self.batch_size = run_with_oom_backoff(order, self.batch_size, step, backoff)
        bar.close()
        columns = [
            nll.astype(np.float32)[:, None],
            n_pred.astype(np.float32)[:, None],
            np.asarray(n_bytes, np.float32)[:, None],
            np.asarray(truncated, np.float32)[:, None],
        ]
        info = {
            **stats,
            "n_items": len(ids),
            "n_truncated": int(sum(truncated)),
            "seconds": time.perf_counter() - started,
            "final_batch_size": self.batch_size,
        }
        return columns, info

    def describe(self) -> dict[str, Any]:
        return {
            "model": self.spec.key,
            "model_id": self.spec.source,
            "model_kind": "causal_lm",
            "model_revision": self.model_revision,
            "model_class": type(self.model).__name__,
            "pooling": PERPLEXITY_POOLING,
            "compute_dtype": str(self.torch_dtype).replace("torch.", ""),
            "device": self.device,
            "max_length": self.max_length,
            "requested_max_length": self.requested_max_length,
            "position_limit": self.position_limit,
            "prepend_bos": self.prepend_bos,
            "layer_names": list(PERPLEXITY_COLUMNS),
        }


def perplexity_table(columns: Sequence[np.ndarray] | np.ndarray) -> Any:
    """A pandas DataFrame with perplexity and bits-per-byte from stored or fresh columns.

    Accepts the scorer's list of (n, 1) columns or a stored (n, 4, 1) feature array.
    """
    import pandas as pd

    if isinstance(columns, np.ndarray):
        if columns.ndim != 3 or columns.shape[1:] != (len(PERPLEXITY_COLUMNS), 1):
            raise ValueError(f"expected an (n, 4, 1) perplexity array, got {columns.shape}")
        columns = [columns[:, i] for i in range(columns.shape[1])]
    data = {
        name: np.asarray(col, np.float64).reshape(-1)
        for name, col in zip(PERPLEXITY_COLUMNS, columns, strict=True)
    }
    frame = pd.DataFrame(data)
    frame["n_predicted_tokens"] = frame["n_predicted_tokens"].astype(int)
    frame["n_bytes"] = frame["n_bytes"].astype(int)
    frame["truncated"] = frame["truncated"].astype(bool)
    frame["perplexity"] = np.exp(frame["nll_nats"] / frame["n_predicted_tokens"].clip(lower=1))
    frame["bits_per_byte"] = frame["nll_nats"] / (math.log(2) * frame["n_bytes"].clip(lower=1))
    return frame


def _forward_parameters(module: Any) -> set[str]:
    import inspect

    return set(inspect.signature(module.forward).parameters)
