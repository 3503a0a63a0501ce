"""Versioned prompt templates; the version id is stored with every result.

``poem-aesthetic-v1`` is the study's rubric (seed paper, section "Aesthetic Rating"),
reproduced verbatim, including its ``{{ ... }}`` braces and its ``<poem_text>`` placeholder.
The braces are Python ``str.format`` escapes in the study's code, so the model saw single
braces: :meth:`PromptTemplate.render` puts the poem in place of ``<poem_text>`` and turns
``{{``/``}}`` into ``{``/``}``. Any change to the wording, the rendering or the re-ask text
must get a NEW version id (``poem-aesthetic-v2``, ...), so stored results never mix prompts.

Example:
    >>> prompt = get_prompt("poem-aesthetic-v1")
    >>> text = prompt.render("Roses are red")
    >>> "Roses are red" in text and '{ "thinking"' in text and "{{" not in text
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

POEM_PLACEHOLDER = "<poem_text>"

# The study's prompt, verbatim (its first line ends with a space).
POEM_AESTHETIC_V1_TEXT = (
    "You are an objective literary evaluator. \n"
    + """Task:
1) Evaluate the beauty of the following poem and give it an integer score from 1 to 5 (1 = not beautiful, 5 = extremely beautiful).
2) First output a concise, non-sensitive rationale (a clear summary explaining why you gave this score). This should be at most ~200 words, avoid step-by-step internal chain-of-thought.
3) Then output the score.
4) Finally return a JSON object EXACTLY in this format (no extra commentary):
{{ "thinking": "<the concise rationale as a string>", "score": <int 1-5> }}

Poem to evaluate:
<poem_text>

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

Now perform the evaluation."""
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

    def render(self, poem_text: str) -> str:
        """The user message for one poem.

        Example:
            >>> get_prompt("poem-aesthetic-v1").render("x").count("Poem to evaluate:")
            1
        """
        if not isinstance(poem_text, str) or not poem_text.strip():
            raise ValueError("poem_text must be a non-empty string")
        unescaped = self.text.replace("{{", "{").replace("}}", "}")
        return unescaped.replace(self.placeholder, poem_text)

    def messages(self, poem_text: str) -> list[dict[str, Any]]:
        """Chat messages for one poem (one user message; the study used no system prompt)."""
        return [{"role": "user", "content": self.render(poem_text)}]

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
}

DEFAULT_POEM_PROMPT = "poem-aesthetic-v1"


def get_prompt(version: str = DEFAULT_POEM_PROMPT) -> PromptTemplate:
    """The template with this version id.

    Example:
        >>> get_prompt("poem-aesthetic-v1").task
        'poem-aesthetic'
    """
    try:
        return PROMPTS[version]
    except KeyError:
        known = ", ".join(sorted(PROMPTS))
        raise ValueError(f"unknown prompt version {version!r}; known versions: {known}") from None
