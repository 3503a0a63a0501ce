"""Plain descriptive texts: the study's reference captions, and an offline sample.

* :func:`load_prh_captions` is what the study used: ``minhuh/prh`` at revision ``wit_1024``
  (1,024 Wikipedia image captions, the Platonic Representation Hypothesis data), first
  caption of each row, through ``datasets.load_dataset``. It needs the Hub.
* :func:`build_wordnet_plain_texts` builds an offline sample from Debian's ``wordnet-base``
  glosses (``/usr/share/wordnet/data.noun``; WordNet 3.0 license, BSD-like, Princeton
  University): descriptive sentences about concrete things (animals, artifacts, food,
  objects, plants, places), e.g. "A lighthouse is a tower with a light that gives warning
  of shoals to passing ships." A text grows by the thing's usage examples and the
  definitions of its hypernyms (then of another thing of the same kind) up to a target
  length drawn from a log-normal around 40 words (clipped to 8-150), so lengths spread like
  captions' rather than sitting at one value. The real captions' lengths are not known
  offline; 40 words is a choice, not a measurement of ``minhuh/prh``.

Example:
    >>> texts = build_wordnet_plain_texts(n=8, seed=0)  # doctest: +SKIP
    >>> texts[0].source  # doctest: +SKIP
    'wordnet-3.0'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from uaes_hf.data.lengths import count_words
from uaes_hf.data.records import PlainTextRecord, content_id
from uaes_hf.data.study_import import PRH_REPO, PRH_REVISION

WORDNET_DIR = Path("/usr/share/wordnet")
WORDNET_LICENSE = "WordNet 3.0 license (Princeton University; BSD-like, attribution required)"
# noun lexicographer files of concrete things: animal, artifact, food, location, object, plant
CONCRETE_LEXFILES = frozenset({"05", "06", "13", "15", "17", "20"})


class HubUnavailableError(RuntimeError):
    """The Hub cannot be reached (offline machine or ``HF_HUB_OFFLINE=1``)."""


def load_prh_captions(
    revision: str = PRH_REVISION, split: str = "train", repo_id: str = PRH_REPO
) -> list[PlainTextRecord]:
    """The study's plain texts: first caption of each row of ``minhuh/prh@wit_1024``.

    The rows are read by :func:`uaes_hf.data.study_import.import_plain_texts` (the caption
    kept as the study read it, ``str(row['text'][0])``). Raises
    :class:`HubUnavailableError` with what to do instead when the Hub is not reachable.

    Example:
        >>> captions = load_prh_captions()  # doctest: +SKIP
        >>> len(captions)  # doctest: +SKIP
        1024
    """
    import os

    from uaes_hf.data.study_import import import_plain_texts

    try:
        result = import_plain_texts(repo_id, revision, split=split)
    except ValueError:  # a reachable dataset without a text column: say so as it is
        raise
    except Exception as err:  # datasets raises several types for "no network"
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0")
        raise HubUnavailableError(
            f"could not load {repo_id}@{revision} from the Hugging Face Hub"
            f"{' (HF_HUB_OFFLINE is set)' if offline else ''}: {type(err).__name__}: {err}. "
            "Offline, use uaes_hf.data.build_wordnet_plain_texts() (or `uaes prepare embedded`)."
        ) from err
    return list(result.records)


@dataclass(frozen=True)
class _Synset:
    offset: str
    words: tuple[str, ...]
    hypernyms: tuple[str, ...]
    definition: str
    examples: tuple[str, ...]


def _parse_wordnet_nouns(path: Path) -> dict[str, tuple[str, _Synset]]:
    synsets: dict[str, tuple[str, _Synset]] = {}
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.startswith("  "):  # license header
                continue
            data, _, gloss = line.partition(" | ")
            fields = data.split()
            offset, lexfile, n_words = fields[0], fields[1], int(fields[3], 16)
            words = tuple(fields[4 + 2 * i].replace("_", " ") for i in range(n_words))
            pos = 4 + 2 * n_words
            n_pointers = int(fields[pos])
            hypernyms = tuple(
                fields[pos + 2 + 4 * i]
                for i in range(n_pointers)
                if fields[pos + 1 + 4 * i] in ("@", "@i")
            )
            examples = tuple(re.findall(r'"([^"]+)"', gloss))
            definition = gloss.split(";")[0].strip().strip('"').strip()
            synsets[offset] = (lexfile, _Synset(offset, words, hypernyms, definition, examples))
    return synsets


def _article(word: str) -> str:
    return "An" if word[:1].lower() in "aeiou" else "A"


def _sentence(text: str) -> str:
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _describe(synsets: dict[str, tuple[str, _Synset]], offset: str) -> list[str]:
    """Definition, usage examples, then the definitions of a few hypernyms."""
    synset = synsets[offset][1]
    head = synset.words[0]
    sentences = [_sentence(f"{_article(head)} {head} is {synset.definition}")]
    sentences.extend(_sentence(e) for e in synset.examples)
    parent = synset
    for _ in range(8):
        if not parent.hypernyms or parent.hypernyms[0] not in synsets:
            break
        parent = synsets[parent.hypernyms[0]][1]
        name = parent.words[0]
        sentences.append(_sentence(f"{_article(name)} {name} is {parent.definition}"))
    return sentences


def build_wordnet_plain_texts(
    n: int = 1024,
    *,
    seed: int = 0,
    median_words: float = 40.0,
    wordnet_dir: str | Path = WORDNET_DIR,
) -> list[PlainTextRecord]:
    """An offline plain-text sample of ``n`` descriptive texts from WordNet glosses.

    Example:
        >>> [r.n_words > 0 for r in build_wordnet_plain_texts(n=3)]  # doctest: +SKIP
        [True, True, True]
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    path = Path(wordnet_dir) / "data.noun"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: install Debian's wordnet-base (apt-get install wordnet-base) "
            "or pass wordnet_dir"
        )
    synsets = _parse_wordnet_nouns(path)
    pool = sorted(
        offset
        for offset, (lexfile, synset) in synsets.items()
        if lexfile in CONCRETE_LEXFILES and len(synset.definition.split()) >= 4
    )
    if len(pool) < n:
        raise ValueError(f"only {len(pool)} concrete WordNet synsets, asked for n={n}")
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(pool), size=n, replace=False)
    targets = np.clip(rng.lognormal(np.log(median_words), 0.5, size=n), 8, 150)
    records = []
    for position, target in zip(chosen, targets, strict=True):
        sentences = _describe(synsets, pool[position])
        words = count_words(sentences[0])
        kept = [sentences[0]]
        while True:
            for sentence in sentences[len(kept) :]:
                if words + count_words(sentence) > target:
                    break
                kept.append(sentence)
                words += count_words(sentence)
            else:
                # the thing's own description ran out below the target: describe another
                # thing of the same kind, as a caption naming several objects would
                lexfile = synsets[pool[position]][0]
                other = pool[int(rng.integers(len(pool)))]
                if synsets[other][0] == lexfile and words + 6 <= target:
                    sentences = kept + _describe(synsets, other)
                    continue
            break
        text = " ".join(kept)
        records.append(PlainTextRecord(content_id(text), text, count_words(text), "wordnet-3.0"))
    return records


def write_plain_texts(records: list[PlainTextRecord], folder: str | Path, **card: Any) -> Path:
    """Write plain texts as a one-config dataset repo folder (``load_dataset(folder)``)."""
    from uaes_hf.data.records import plain_text_features
    from uaes_hf.data.repo import ConfigData, write_dataset_repo

    rows = [r.as_row() for r in records]
    return write_dataset_repo(
        folder,
        [ConfigData("default", rows, plain_text_features(), default=True)],
        card_yaml={
            "license": "other",
            "license_name": "wordnet-3.0",
            "language": ["en"],
            "task_categories": ["feature-extraction"],
            "pretty_name": "Plain descriptive texts (offline sample)",
            **card.get("card_yaml", {}),
        },
        card_body=card.get(
            "card_body",
            "# Plain descriptive texts\n\nOffline stand-in for `minhuh/prh@wit_1024` captions, "
            f"built from WordNet 3.0 glosses. License: {WORDNET_LICENSE}.\n",
        ),
    )


def load_plain_text_records(path: str | Path) -> list[PlainTextRecord]:
    """Read plain texts back from a folder written by :func:`write_plain_texts`."""
    from uaes_hf.data.repo import load_dataset_repo

    dataset = load_dataset_repo(path, split="train")
    return [
        PlainTextRecord(row["id"], row["text"], int(row["n_words"]), row["source"])
        for row in dataset
    ]
