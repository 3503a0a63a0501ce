"""The image-text corpus of the retrieval study, from data that setup installs.

Sources (each item keeps its own license and source):

- ``openclipart``: Debian's ``openclipart-png`` drawings (public domain, Open Clip Art
  Library 0.18). Titles, descriptions and keywords come from the matching SVG in
  ``openclipart-svg`` (its RDF metadata); the category is the folder path. Items whose
  title is generic (shared by more than ``max_title_repeats`` drawings, e.g. icon themes,
  "card", "gramastar"), whose declared license is not public domain, or whose PNG is
  tiny or huge are left out; folders of near-identical series (icon themes, stars,
  gradients, cards, jigsaw pieces, flowchart shapes, duplicates) are excluded.
- ``embedded_photos``: the captioned photos of :mod:`uaes_hf.data.embedded_images`.
- ``imagefolder:<path>``: any folder with ``metadata.csv`` (``file_name``, ``caption``).

Identical image files (the same drawing filed under two categories) are kept once.

Example:
    >>> meta = parse_svg_metadata(
    ...     '<cc:Work><dc:title>Bored dog</dc:title><dc:subject><rdf:Bag>'
    ...     '<rdf:li>dog</rdf:li><rdf:li>hash</rdf:li></rdf:Bag></dc:subject>'
    ...     '<cc:license rdf:resource="http://web.resource.org/cc/PublicDomain"/></cc:Work>')
    >>> make_caption(meta.title, meta.description, meta.keywords, "animals/mammals/dogs")
    'Bored dog. Keywords: dog. Category: animals, mammals, dogs.'
"""

from __future__ import annotations

import csv
import hashlib
import html
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OPENCLIPART_ROOT = Path("/usr/share/openclipart")
OPENCLIPART_LICENSE = "Public domain (Open Clip Art Library 0.18, Debian openclipart-png)"
# Series of near-identical drawings with generic titles: they would teach nothing.
EXCLUDED_FOLDERS: tuple[str, ...] = (
    "computer/icons",
    "shapes/stars",
    "shapes/jigsaw",
    "shapes/flowchart",
    "special",
    "unsorted/duplicates",
    "recreation/games/cards",
)
PUBLIC_DOMAIN_MARKS = ("cc/PublicDomain", "licenses/publicdomain")
MIN_SIDE = 16
MAX_PIXELS = 4_000_000
MAX_ASPECT = 6.0
SOURCES = ("openclipart", "embedded_photos")

_TITLE_RE = re.compile(r"<dc:title>([^<]*)</dc:title>")
_DESCRIPTION_RE = re.compile(r"<dc:description>([^<]*)</dc:description>")
_SUBJECT_RE = re.compile(r"<dc:subject>(.*?)</dc:subject>", re.S)
_LI_RE = re.compile(r"<rdf:li>([^<]*)</rdf:li>")
_LICENSE_RE = re.compile(r'<cc:license[^>]*rdf:resource="([^"]*)"')
_WORK_RE = re.compile(r"<cc:Work[^>]*>(.*?)</cc:Work>", re.S)
_JUNK_RE = re.compile(r"hash\(|https?://|www\.|@|sodipodi|inkscape|\.svg", re.I)


@dataclass(frozen=True)
class SvgMetadata:
    """What an Open Clip Art SVG says about itself."""

    title: str
    description: str
    keywords: tuple[str, ...]
    license: str


@dataclass(frozen=True)
class CorpusItem:
    """One image and its caption."""

    item_id: str
    path: str
    caption: str
    title: str
    category: str
    license: str
    source: str


@dataclass(frozen=True)
class Corpus:
    """An ordered, fingerprinted list of :class:`CorpusItem`.

    Example:
        >>> c = Corpus((CorpusItem("a", "/x.png", "a cat", "cat", "animals", "PD", "t"),))
        >>> len(c), c.captions
        (1, ['a cat'])
    """

    items: tuple[CorpusItem, ...]

    def __post_init__(self) -> None:
        ids = [item.item_id for item in self.items]
        if len(set(ids)) != len(ids):
            raise ValueError("corpus item ids must be unique")

    def __len__(self) -> int:
        return len(self.items)

    @property
    def captions(self) -> list[str]:
        return [item.caption for item in self.items]

    @property
    def paths(self) -> list[str]:
        return [item.path for item in self.items]

    def fingerprint(self) -> str:
        """Hash of every item's id, caption and image bytes (20 hex)."""
        digest = hashlib.sha256()
        for item in self.items:
            digest.update(f"{item.item_id}\x00{item.caption}\x00".encode())
            digest.update(hashlib.sha256(Path(item.path).read_bytes()).digest())
        return digest.hexdigest()[:20]


def parse_svg_metadata(svg_text: str) -> SvgMetadata:
    """Title, description, keywords and license of one SVG's ``cc:Work`` block."""
    match = _WORK_RE.search(svg_text)
    work = match.group(1) if match else ""
    title = _TITLE_RE.search(work)
    description = _DESCRIPTION_RE.search(work)
    subject = _SUBJECT_RE.search(work)
    keywords = _LI_RE.findall(subject.group(1)) if subject else []
    license_match = _LICENSE_RE.search(svg_text)
    return SvgMetadata(
        title=html.unescape(title.group(1)).strip() if title else "",
        description=html.unescape(description.group(1)).strip() if description else "",
        keywords=tuple(html.unescape(k).strip() for k in keywords),
        license=license_match.group(1) if license_match else "",
    )


def _words(text: str) -> str:
    return " ".join(text.replace("_", " ").split())


def make_caption(
    title: str, description: str, keywords: Sequence[str], category: str, max_keywords: int = 6
) -> str:
    """Caption text: the title, a short clean description, keywords and the category path.

    Example:
        >>> make_caption("red_apple", "", ["fruit", "red apple", "sweet"], "food/fruit")
        'red apple. Keywords: sweet. Category: food, fruit.'
    """
    title = _words(title).strip(" .")
    parts = [title + "."]
    desc = _words(description)
    if desc and not _JUNK_RE.search(desc) and len(desc) <= 160 and desc.lower() != title.lower():
        parts.append(desc.rstrip(".") + ".")
    folders = [_words(p) for p in category.split("/") if p]
    seen = {title.lower(), *(f.lower() for f in folders)}
    kept: list[str] = []
    for keyword in keywords:
        word = _words(keyword).lower()
        if not word or word in seen or _JUNK_RE.search(word) or word == "hash":
            continue
        seen.add(word)
        kept.append(word)
    if kept:
        parts.append("Keywords: " + ", ".join(kept[:max_keywords]) + ".")
    if folders:
        parts.append("Category: " + ", ".join(folders) + ".")
    return " ".join(parts)


def image_size_ok(path: str | Path) -> bool:
    """Whether an image's header size is usable (not tiny, huge or a thin strip)."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                width, height = img.size
    except (OSError, Image.DecompressionBombError):
        return False
    if min(width, height) < MIN_SIDE or width * height > MAX_PIXELS:
        return False
    return max(width, height) / min(width, height) <= MAX_ASPECT


def openclipart_items(
    root: str | Path = OPENCLIPART_ROOT, *, max_title_repeats: int = 3
) -> list[CorpusItem]:
    """Every usable Open Clip Art drawing (sorted by path); see the module doc for filters."""
    root = Path(root)
    svg_root, png_root = root / "svg", root / "png"
    if not png_root.is_dir() or not svg_root.is_dir():
        raise ValueError(
            f"Open Clip Art is not installed under {root}: run "
            "`apt-get install openclipart-png openclipart-svg` (see the Makefile)"
        )
    if max_title_repeats < 1:
        raise ValueError(f"max_title_repeats must be >= 1, got {max_title_repeats}")
    found: list[tuple[str, SvgMetadata]] = []
    for svg in sorted(svg_root.rglob("*.svg")):
        relative = svg.relative_to(svg_root).as_posix()
        if relative.startswith(EXCLUDED_FOLDERS):
            continue
        head = svg.read_text(encoding="utf-8", errors="replace")[:30000]
        found.append((relative, parse_svg_metadata(head)))
    repeats = Counter(meta.title.lower() for _, meta in found)
    items = []
    for relative, meta in found:
        if not meta.title or repeats[meta.title.lower()] > max_title_repeats:
            continue
        if not any(mark in meta.license for mark in PUBLIC_DOMAIN_MARKS):
            continue
        png = png_root / (relative[: -len(".svg")] + ".png")
        if not png.is_file() or not image_size_ok(png):
            continue
        category = str(Path(relative).parent.as_posix())
        items.append(
            CorpusItem(
                item_id=f"openclipart:{relative[: -len('.svg')]}",
                path=str(png),
                caption=make_caption(meta.title, meta.description, meta.keywords, category),
                title=_words(meta.title),
                category=category,
                license=OPENCLIPART_LICENSE,
                source="openclipart-png",
            )
        )
    return items


def embedded_photo_items(progress: bool = False) -> list[CorpusItem]:
    """The captioned photos of the embedded image sample (built once into the cache)."""
    from uaes_hf.data.embedded_images import build_embedded_imagefolder

    folder = build_embedded_imagefolder(progress=progress).folder
    return imagefolder_items(folder, source_name="embedded_photos")


def imagefolder_items(folder: str | Path, source_name: str | None = None) -> list[CorpusItem]:
    """Items of an imagefolder with ``metadata.csv`` (``file_name``, ``caption``, ...)."""
    folder = Path(folder)
    table = folder / "metadata.csv"
    if not table.is_file():
        raise ValueError(f"{folder} has no metadata.csv (columns file_name, caption)")
    with table.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"file_name", "caption"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{table} lacks columns {sorted(missing)}")
        rows = list(reader)
    name = source_name or folder.name
    items = []
    for row in rows:
        path = folder / row["file_name"]
        if not path.is_file() or not (row.get("caption") or "").strip():
            continue
        items.append(
            CorpusItem(
                item_id=f"{name}:{row['file_name']}",
                path=str(path),
                caption=" ".join(row["caption"].split()),
                title=" ".join(row["caption"].split()[:8]),
                category="photos",
                license=row.get("license") or "see the source folder",
                source=row.get("source_package") or name,
            )
        )
    return items


def sample_balanced(
    items: Sequence[CorpusItem], max_items: int, per_category: int, seed: int = 0
) -> list[CorpusItem]:
    """At most ``per_category`` items per category, then at most ``max_items`` in all.

    Deterministic for a seed; the result keeps the input order.

    Example:
        >>> items = [CorpusItem(str(i), "", "", "", "c" + str(i % 2), "", "") for i in range(10)]
        >>> [i.item_id for i in sample_balanced(items, 4, 3, seed=0)]  # doctest: +ELLIPSIS
        [...]
        >>> len(sample_balanced(items, 4, 3)), len(sample_balanced(items, 100, 3))
        (4, 6)
    """
    if max_items < 1 or per_category < 1:
        raise ValueError("max_items and per_category must be >= 1")
    rng = random.Random(seed)
    by_category: dict[str, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        by_category[item.category].append(index)
    chosen: list[int] = []
    for category in sorted(by_category):
        indices = by_category[category]
        chosen += rng.sample(indices, min(per_category, len(indices)))
    if len(chosen) > max_items:
        chosen = rng.sample(chosen, max_items)
    return [items[i] for i in sorted(chosen)]


def build_corpus(
    sources: Iterable[str] = SOURCES,
    *,
    max_items: int = 2000,
    per_category: int = 60,
    seed: int = 0,
    progress: bool = False,
) -> Corpus:
    """Assemble the corpus from ``sources`` (see the module doc); photos are never dropped.

    Example:
        >>> corpus = build_corpus(["openclipart"], max_items=100)  # doctest: +SKIP
        >>> len(corpus)  # doctest: +SKIP
        100
    """
    items: list[CorpusItem] = []
    for source in sources:
        if source == "openclipart":
            items += sample_balanced(openclipart_items(), max_items, per_category, seed)
        elif source == "embedded_photos":
            items += embedded_photo_items(progress=progress)
        elif source.startswith("imagefolder:"):
            items += imagefolder_items(source.split(":", 1)[1])
        else:
            raise ValueError(
                f"unknown corpus source {source!r}; use one of {SOURCES} or imagefolder:<path>"
            )
    items = drop_duplicate_images(items)
    if len(items) < 10:
        raise ValueError(f"the corpus has {len(items)} items; at least 10 are needed")
    return Corpus(tuple(items))


def drop_duplicate_images(items: Sequence[CorpusItem]) -> list[CorpusItem]:
    """Keep the first item of each distinct image file content (the same drawing is filed
    under several categories in Open Clip Art)."""
    seen: set[bytes] = set()
    kept = []
    for item in items:
        digest = hashlib.sha256(Path(item.path).read_bytes()).digest()
        if digest not in seen:
            seen.add(digest)
            kept.append(item)
    return kept


def load_image(path: str | Path, max_side: int | None = 512) -> Any:
    """Open an image as RGB; transparency is composited over white; downscaled to max_side.

    Example:
        >>> import tempfile, pathlib
        >>> from PIL import Image
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "t.png"
        >>> Image.new("RGBA", (40, 20), (0, 0, 0, 0)).save(p)
        >>> img = load_image(p, max_side=10)
        >>> img.size, img.getpixel((0, 0))
        ((10, 5), (255, 255, 255))
    """
    from PIL import Image

    with Image.open(path) as img:
        if max_side is not None:
            img.draft("RGB", (max_side, max_side))  # JPEG: decode at a reduced scale
        img.load()
        if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
            rgba = img.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            rgb = Image.alpha_composite(white, rgba).convert("RGB")
        else:
            rgb = img.convert("RGB")
    if max_side is not None and max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
    return rgb
