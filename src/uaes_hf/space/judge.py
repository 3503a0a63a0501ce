"""The Judge tab: rate one poem with the study's prompt, on the owner's key, within limits.

The tab is **off** unless the owner sets ``UAES_SPACE_JUDGE=1`` (it spends the owner's API
key): off, it makes no request at all. On, every rating:

* is looked up first in the judge's durable store (``uaes_hf.annotate.store.ResultStore``,
  the store ``uaes annotate`` uses; default ``$UAES_HOME/space/judge.sqlite``): a poem rated
  before is answered from it, free and without counting against any limit;
* else counts against the visitor's session (``judge_per_session`` ratings per
  ``judge_window_s``), and is asked through :func:`uaes_hf.annotate.judge.rate_one`, with
  the client's total deadline per request and call (``judge_deadline_s``) and one cap on
  the HTTP requests of the whole Space (``judge_max_requests``);
* refuses poems longer than ``judge_max_chars``.

The endpoint's URL is never shown (messages from the client are scrubbed of it); the key
is read from ``OPENAI_API_KEY`` only.

Example:
    >>> judge = SpaceJudge(enabled=False, model="gpt-4o", base_url=None, store_path=None)
    >>> "off" in judge.rate("Roses are red", session="s1")
    True
"""

from __future__ import annotations

import html
import os
import threading
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from uaes_hf.space.budget import BudgetError, SessionRateLimiter, SpaceBudget
from uaes_hf.space.sources import JUDGE_FLAG

API_KEY_ENV = "OPENAI_API_KEY"


def _prompt() -> Any:
    """The judge's prompt: the study's verbatim request (the default template)."""
    from uaes_hf.annotate.prompts import get_prompt

    return get_prompt()


def judge_off_markdown() -> str:
    return (
        "**The LLM judge is off in this Space.** It calls a paid API on the owner's key, so "
        f"it runs only when the owner sets the variable `{JUDGE_FLAG}=1` (and the secret "
        f"`{API_KEY_ENV}`). Offline, the library rates poems with a packaged SmolLM2: "
        "`uaes annotate poems --backend local`."
    )


def judge_howto_markdown() -> str:
    return f"""\
**The LLM judge is not configured.** To rate poems here, give the Space an OpenAI-compatible
endpoint:

- set the secret `{API_KEY_ENV}` (Space settings → *Variables and secrets*; locally
  `export {API_KEY_ENV}=...`; any non-empty value for a local server that ignores keys);
- optionally `OPENAI_BASE_URL` (e.g. a vLLM or ollama server) and `UAES_JUDGE_MODEL`
  (default `gpt-4o`, the study's judge);
- restart the Space.

Offline, the library rates poems with a packaged SmolLM2 instead:
`uaes annotate poems --backend local`.
"""


class SpaceJudge:
    """The judge of one Space: its flag, limits, client and answer cache (made on first use)."""

    def __init__(
        self,
        *,
        enabled: bool,
        model: str,
        base_url: str | None,
        store_path: Any,
        budget: SpaceBudget | None = None,
    ) -> None:
        self.enabled = bool(enabled)
        self.model = model
        self.base_url = base_url
        self.store_path = store_path
        self.budget = budget or SpaceBudget()
        self.limiter = SessionRateLimiter(self.budget.judge_per_session, self.budget.judge_window_s)
        self._lock = threading.Lock()
        self._backend: Any = None
        self._store: Any = None

    @staticmethod
    def has_key() -> bool:
        return bool(os.environ.get(API_KEY_ENV, "").strip())

    def status_markdown(self) -> str:
        """What the tab says above its widgets (no URL, no key)."""
        if not self.enabled:
            return judge_off_markdown()
        if not self.has_key():
            return judge_howto_markdown()
        budget, prompt = self.budget, _prompt()
        return (
            f"The judge is on: model **{self.model}**, with the study's verbatim prompt "
            f"(`{prompt.version}`: its system message, the poem in triple quotes, "
            f"max_tokens {prompt.max_tokens}). Limits: {budget.judge_per_session} new ratings per "
            f"{budget.judge_window_s / 60:.0f} minutes per visitor, poems up to "
            f"{budget.judge_max_chars:,} characters; poems rated before are answered from "
            "the cache."
        )

    def rate(self, text: str, *, session: str) -> str:
        """Rate one poem (Markdown): from the cache, else through the endpoint.

        Raises:
            BudgetError: over the text length or the session's rate (the message names it).
        """
        if not self.enabled:
            return judge_off_markdown()
        if not self.has_key():
            return judge_howto_markdown()
        text = str(text)
        if not text.strip():
            raise ValueError("the poem is empty")
        self.budget.check_judge_text(text)
        from uaes_hf.annotate.client import ChatConfigError
        from uaes_hf.annotate.judge import PoemItem, item_key, rate_one

        backend, store = self._parts()
        cached = store.get(item_key(backend, text))
        if cached is not None and cached.ok:
            return self._verdict(cached, cached=True)
        wait = self.limiter.acquire(session)
        if wait is not None:
            budget = self.budget
            raise BudgetError(
                f"this visitor has used the Space's limit of {budget.judge_per_session} new "
                f"ratings per {budget.judge_window_s / 60:.0f} minutes; try again in "
                f"{wait:.0f} s (poems rated before are still answered from the cache)"
            )
        try:
            row = rate_one(PoemItem("space", text), store, backend)
        except ChatConfigError as err:
            return f"**The judge is unavailable**: {html.escape(self.scrub(str(err)))}"
        if row is None or not row.ok:
            reason = "no answer" if row is None else row.reason
            detail = "" if row is None else self.scrub(row.detail or "")
            return f"**The judge failed** ({reason}): {html.escape(detail)}"
        return self._verdict(row, cached=False)

    def _verdict(self, row: Any, *, cached: bool) -> str:
        payload = row.payload or {}
        note = " · from the cache" if cached else ""
        return (
            f"### Score: {payload.get('score')} / 5\n\n"
            f"{html.escape(str(payload.get('thinking', '')))}\n\n"
            f"<small>{html.escape(self.model)} · prompt {row.key.prompt_version} · "
            f"{row.prompt_tokens} + {row.completion_tokens} tokens{note}</small>"
        )

    def scrub(self, message: str) -> str:
        """``message`` without the endpoint's URL or host."""
        if not self.base_url:
            return message
        parts = urlsplit(self.base_url)
        for secret in (self.base_url.rstrip("/"), parts.netloc, parts.hostname):
            if secret:
                message = message.replace(secret, "<the judge endpoint>")
        return message

    def _parts(self) -> tuple[Any, Any]:
        """The backend (one client for the whole Space, so its request cap is global) and
        the answer store, made on first use."""
        with self._lock:
            if self._backend is None:
                from uaes_hf.annotate.client import ChatClient, ChatConfig
                from uaes_hf.annotate.judge import OpenAIRatingBackend
                from uaes_hf.annotate.store import ResultStore

                deadline = self.budget.judge_deadline_s
                config = ChatConfig(
                    model=self.model, base_url=self.base_url, timeout=deadline, max_retries=1,
                    concurrency=1, deadline=deadline, breaker_threshold=3,
                    max_requests=self.budget.judge_max_requests,
                )  # fmt: skip
                backend = OpenAIRatingBackend(ChatClient(config), max_reasks=1, deadline=deadline)
                self._store = ResultStore(self.store_path or default_store_path())
                self._backend = backend
            return self._backend, self._store

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
                self._backend = None


def default_store_path() -> Path:
    """``$UAES_HOME/space/judge.sqlite``."""
    from uaes_hf.paths import uaes_home

    return uaes_home() / "space" / "judge.sqlite"
