"""Versioned prompt templates for the poem judge.

``poem-aesthetic-v2`` (the default) is what the study's rating script
(``poems/rating_poems.py``, ``evaluate_poem``) sent to GPT-4o, character for character:

- a system message, ``"You are an objective, concise literary critic."``;
- the user message exactly as the script's f-string produced it: a leading newline, every
  line of the rubric indented by four spaces (the indentation of the script's source), the
  poem between triple double quotes (the poem's own lines not indented), and a trailing
  newline plus four spaces;
- ``max_tokens=700`` (and ``temperature=0``, the client's default).

``poem-aesthetic-v1`` is the same rubric as printed in the paper (no indentation, no quotes
around the poem, no system message, no ``max_tokens``): what this package sent before it
followed the script. It stays readable so older stores can still be exported, but it is not
the study's request.

The braces are Python ``str.format``/f-string escapes in the study's code, so the model saw
single braces: :meth:`PromptTemplate.render` puts the poem in place of ``<poem_text>`` and
turns ``{{``/``}}`` into ``{``/``}``. Any change to the wording, the rendering, the system
message, ``max_tokens`` or the re-ask text must get a NEW version id, so stored results
never mix prompts (the version is part of every store key).

Example:
    >>> prompt = get_prompt("poem-aesthetic-v2")
    >>> [m["role"] for m in prompt.messages("Roses are red")], prompt.max_tokens
    (['system', 'user'], 700)
    >>> prompt.render("Roses are red").count('"' * 3 + "Roses are red" + '"' * 3)
    1
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Any

POEM_PLACEHOLDER = "<poem_text>"

# What the study's script sent: its f-string, verbatim. The first rubric line ends with a
# space, every line carries the script's 4-space indent, blank lines are empty.
STUDY_SYSTEM_MESSAGE = "You are an objective, concise literary critic."
STUDY_MAX_TOKENS = 700
POEM_AESTHETIC_V2_TEXT = (
    "\n    You are an objective literary evaluator. \n"
    + """    Task:
    1) Evaluate the beauty of the following poem and give it an integer score from 1 to 5 (1 = not beautiful, 5 = extremely beautiful).
    2) First output a concise, non-sensitive rationale (a clear summary explaining why you gave this score). This should be at most ~200 words, avoid step-by-step internal chain-of-thought.
    3) Then output the score.
    4) Finally return a JSON object EXACTLY in this format (no extra commentary):
    {{ "thinking": "<the concise rationale as a string>", "score": <int 1-5> }}

    Poem to evaluate:
    \"\"\"<poem_text>\"\"\"

    Scoring criteria (you MUST apply these; briefly mention which criteria influenced the score in the rationale):
    - Imagery & Sensory Detail (weight 30%): quality and vividness of images, sensory language.
    - Emotional Impact (weight 25%): emotional resonance, ability to move reader.
    - Language & Diction (weight 15%): word choice, originality, metaphors, semantic richness.
    - Structure & Rhythm (weight 15%): line breaks, meter/flow, internal cohesion.
    - Originality & Depth (weight 15%): fresh perspective or depth of thought.

    Scoring method: evaluate each criterion on 0-10, compute weighted sum, map to 1-5:
    total_score_0_10 = weighted average (0-10)
    final_score = round(total_score_0_10 / 2)  # maps 0-10 to 0-5, round to nearest int, but clamp to 1-5

    Important instructions for your output:
    - Do NOT reveal internal chain-of-thought. Only provide a concise rationale (summary) explaining which criteria mattered and how.
    - Output MUST be valid JSON as specified in step 4. 'thinking' must be a string, 'score' an integer.
    - Example of allowed rationale: "Strong imagery and emotional resonance; language sometimes cliché; good rhythm; overall score 4."

    Now perform the evaluation.
    """
)

# The same rubric as printed in the paper (section "Aesthetic Rating"): without the script's
# indentation and without the quotes around the poem. Its first line ends with a space.
POEM_AESTHETIC_V1_TEXT = (
    textwrap.dedent(POEM_AESTHETIC_V2_TEXT.lstrip("\n"))
    .replace('"""<poem_text>"""', "<poem_text>")
    .rstrip()
)

POEM_AESTHETIC_V1_REASK = (
    "Your previous answer could not be used: {problem}. Reply again with ONLY the JSON object "
    'in exactly this format: {{ "thinking": "<the concise rationale as a string>", '
    '"score": <int 1-5> }}'
)


@dataclass(frozen=True)
class PromptTemplate:
    """A versioned prompt: the template text, and the re-ask text for an unusable answer."""

    version: str
    task: str
    text: str
    reask: str
    placeholder: str = POEM_PLACEHOLDER
    system: str | None = None
    max_tokens: int | None = None

    def render(self, poem_text: str) -> str:
        """The user message for one poem.

        Example:
            >>> get_prompt().render("x").count("Poem to evaluate:")
            1
        """
        if not isinstance(poem_text, str) or not poem_text.strip():
            raise ValueError("poem_text must be a non-empty string")
        unescaped = self.text.replace("{{", "{").replace("}}", "}")
        return unescaped.replace(self.placeholder, poem_text)

    def messages(self, poem_text: str) -> list[dict[str, Any]]:
        """Chat messages for one poem: the template's system message (if any), then the
        rendered user message.

        Example:
            >>> get_prompt("poem-aesthetic-v2").messages("x")[0]["content"]
            'You are an objective, concise literary critic.'
        """
        user = {"role": "user", "content": self.render(poem_text)}
        return [{"role": "system", "content": self.system}, user] if self.system else [user]

    def reask_messages(
        self, poem_text: str, previous_answer: str, problem: str
    ) -> list[dict[str, Any]]:
        """Messages asking again after an unusable answer (bad JSON, score out of range)."""
        return [
            *self.messages(poem_text),
            {"role": "assistant", "content": previous_answer},
            {"role": "user", "content": self.reask.format(problem=problem)},
        ]


PROMPTS: dict[str, PromptTemplate] = {
    "poem-aesthetic-v1": PromptTemplate(
        version="poem-aesthetic-v1",
        task="poem-aesthetic",
        text=POEM_AESTHETIC_V1_TEXT,
        reask=POEM_AESTHETIC_V1_REASK,
    ),
    "poem-aesthetic-v2": PromptTemplate(
        version="poem-aesthetic-v2",
        task="poem-aesthetic",
        text=POEM_AESTHETIC_V2_TEXT,
        reask=POEM_AESTHETIC_V1_REASK,
        system=STUDY_SYSTEM_MESSAGE,
        max_tokens=STUDY_MAX_TOKENS,
    ),
}

DEFAULT_POEM_PROMPT = "poem-aesthetic-v2"


def get_prompt(version: str = DEFAULT_POEM_PROMPT) -> PromptTemplate:
    """The template with this version id.

    Example:
        >>> get_prompt().version
        'poem-aesthetic-v2'
    """
    try:
        return PROMPTS[version]
    except KeyError:
        known = ", ".join(sorted(PROMPTS))
        raise ValueError(f"unknown prompt version {version!r}; known versions: {known}") from None
