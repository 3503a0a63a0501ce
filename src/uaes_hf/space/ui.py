"""Gradio glue shared by the tabs: library errors as messages, and one-line hints.

A library ``ValueError`` (bad input, a budget refusal naming its limit) becomes a Gradio
message without a traceback. A button pressed before its inputs are chosen gets a
:func:`hint` in the tab's text output instead: one line, never an error.

Example:
    >>> hint("choose a subset first")
    '*Hint: choose a subset first.*'
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


def hint(text: str) -> str:
    """A one-line Markdown hint for a button pressed too early."""
    return f"*Hint: {text.rstrip('.')}.*"


def user_message(err: BaseException) -> str:
    """The message a Space user sees for a library error (no traceback, no key)."""
    text = str(err).strip() or type(err).__name__
    if isinstance(err, KeyError):
        text = f"missing field {text}"
    return text


def errors_to_messages(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Show a library ``ValueError`` (or missing data) as a message, not a traceback."""
    import gradio as gr

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (ValueError, FileNotFoundError, KeyError, OSError) as err:
            raise gr.Error(user_message(err), print_exception=False) from None

    return wrapped
