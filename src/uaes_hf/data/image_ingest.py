"""Read an image-caption set: a local ``imagefolder`` or a Hugging Face Hub dataset id.

Local layout (the HF ``imagefolder`` convention)::

    IMAGE_CAPTION_DIR/metadata.csv | metadata.jsonl   (columns: file_name, caption, ...)
    IMAGE_CAPTION_DIR/<file_name>                      (jpg, png, webp, ...; sub-folders ok)

The caption column is named ``caption`` (or ``text``, ``description``, ``captions``; or pass
``caption_column``). Other columns (``license``, ``credit``, ...) are kept as ``extra``.
Every image is fully decoded once: a missing file, an unreadable or truncated image, or a
row without a caption is recorded as a :class:`SkippedImage` and skipped, never fatal and
never silent.

Example:
    >>> import tempfile, pathlib
    >>> from PIL import Image
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> Image.new("RGB", (8, 8), "teal").save(folder / "a.png")
    >>> _ = (folder / "b.png").write_bytes(b"not a png")
    >>> _ = (folder / "metadata.csv").write_text(
    ...     "file_name,caption\\na.png,A teal square.\\nb.png,Broken.\\nc.png,Gone.\\n")
    >>> result = read_imagefolder(folder)
    >>> len(result.items), [s.reason.split(":")[0] for s in result.skipped]
    (1, ['unreadable image', 'missing file'])
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

METADATA_FILES: tuple[str, ...] = ("metadata.csv", "metadata.jsonl")
CAPTION_COLUMNS: tuple[str, ...] = ("caption", "text", "description", "captions")
IMAGE_SUFFIXES: tuple[str, ...] = (
    ".jpg",
    ".jpeg",
    ".png",
    ".webp",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
)


@dataclass(frozen=True)
class ImageCaptionItem:
    """One readable image with its caption.

    Exactly one of ``path`` (a local file) or ``data`` (encoded bytes, e.g. from the Hub)
    is set. ``id`` is a stable content hash of the image bytes (16 hex digits).
    """

    id: str
    file_name: str
    caption: str
    path: Path | None = None
    data: bytes | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def image_bytes(self) -> bytes:
        """The encoded image file (read from disk for a local item)."""
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()

    def open_image(self) -> Any:
        """The image as an RGB ``PIL.Image`` (alpha composited over white)."""
        return decode_rgb(self.image_bytes())


@dataclass(frozen=True)
class SkippedImage:
    """A metadata row or image that was not ingested, and why."""

    file_name: str
    reason: str
    row: int | None = None


@dataclass
class IngestResult:
    """Items read plus everything skipped (with reasons)."""

    items: list[ImageCaptionItem] = field(default_factory=list)
    skipped: list[SkippedImage] = field(default_factory=list)
    source: str = ""

    def report(self) -> str:
        """A short human-readable summary, one line per skipped entry.

        Example:
            >>> IngestResult(source="x").report()
            'x: 0 images read, 0 skipped'
        """
        lines = [f"{self.source}: {len(self.items)} images read, {len(self.skipped)} skipped"]
        lines += [f"  skipped {s.file_name!r}: {s.reason}" for s in self.skipped]
        return "\n".join(lines)


def image_id(data: bytes) -> str:
    """Stable id of an image: the first 16 hex digits of SHA-256 of its encoded bytes.

    Example:
        >>> image_id(b"abc")
        'ba7816bf8f01cfea'
    """
    return hashlib.sha256(data).hexdigest()[:16]


def image_problem(data: bytes) -> str | None:
    """Why ``data`` is not a usable image (``None`` when it decodes completely).

    The whole image is decoded, so a truncated file is caught (``Image.verify`` alone misses
    some truncations).

    Example:
        >>> image_problem(b"not an image")[:17]
        'unreadable image:'
    """
    from PIL import Image

    if not data:
        return "empty file"
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            if img.width < 1 or img.height < 1:
                return "image has no pixels"
    except Image.DecompressionBombError as err:
        return f"image too large: {err}"
    except (OSError, SyntaxError, ValueError) as err:  # UnidentifiedImageError is an OSError
        return f"unreadable image: {err}"
    return None


def decode_rgb(data: bytes) -> Any:
    """Decode image bytes into an RGB ``PIL.Image``; transparency is composited over white.

    Example:
        >>> from PIL import Image; import io
        >>> buf = io.BytesIO(); Image.new("RGBA", (2, 2)).save(buf, "PNG")
        >>> decode_rgb(buf.getvalue()).getpixel((0, 0))
        (255, 255, 255)
    """
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        img.load()
        if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(background, rgba).convert("RGB")
        return img.convert("RGB")


def find_metadata_file(folder: Path) -> Path:
    """The ``metadata.csv`` or ``metadata.jsonl`` of an imagefolder (ValueError if none/both)."""
    found = [folder / name for name in METADATA_FILES if (folder / name).is_file()]
    if not found:
        raise ValueError(
            f"{folder} has no metadata.csv or metadata.jsonl; an imagefolder needs one with "
            "columns file_name and caption"
        )
    if len(found) > 1:
        raise ValueError(f"{folder} has both metadata.csv and metadata.jsonl; keep only one")
    return found[0]


def _metadata_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as fh:
            for i, row in enumerate(csv.DictReader(fh), start=2):  # row 1 is the header
                yield i, dict(row)
        return
    with path.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path} line {i} is not valid JSON: {err.msg}") from None
            if not isinstance(row, dict):
                raise ValueError(f"{path} line {i} is not a JSON object")
            yield i, row


def pick_caption_column(columns: list[str], caption_column: str | None = None) -> str:
    """The caption column among ``columns`` (the given one, else the first known name).

    Example:
        >>> pick_caption_column(["file_name", "text"])
        'text'
    """
    if caption_column is not None:
        if caption_column not in columns:
            raise ValueError(f"caption column {caption_column!r} not found; columns are {columns}")
        return caption_column
    for name in CAPTION_COLUMNS:
        if name in columns:
            return name
    raise ValueError(
        f"no caption column found among {columns}; expected one of {list(CAPTION_COLUMNS)} "
        "or pass caption_column"
    )


def read_imagefolder(folder: str | Path, caption_column: str | None = None) -> IngestResult:
    """Read a local imagefolder with captions; bad rows are skipped and reported.

    Images present in the folder but absent from the metadata are reported as skipped
    (``not in metadata``) so nothing is dropped silently.

    Example:
        >>> import tempfile, pathlib
        >>> from PIL import Image
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> Image.new("RGB", (8, 8)).save(folder / "a.png")
        >>> Image.new("RGB", (8, 8)).save(folder / "stray.png")
        >>> _ = (folder / "metadata.csv").write_text("file_name,caption\\na.png,Black.\\n")
        >>> print(read_imagefolder(folder).report().replace(str(folder), "DIR"))
        DIR: 1 images read, 1 skipped
          skipped 'stray.png': not in metadata
    """
    root = Path(folder)
    if not root.is_dir():
        raise ValueError(f"{root} is not a directory")
    meta_path = find_metadata_file(root)
    rows = list(_metadata_rows(meta_path))
    if not rows:
        raise ValueError(f"{meta_path} has no rows")
    columns = list(dict.fromkeys(k for _, row in rows for k in row))
    if "file_name" not in columns:
        raise ValueError(f"{meta_path} has no file_name column; columns are {columns}")
    caption_key = pick_caption_column(columns, caption_column)
    result = IngestResult(source=str(root))
    seen: set[str] = set()
    for row_no, row in rows:
        file_name = str(row.get("file_name") or "").strip()
        if not file_name:
            result.skipped.append(SkippedImage("", "row without file_name", row_no))
            continue
        seen.add(file_name)
        caption = str(row.get(caption_key) or "").strip()
        path = (root / file_name).resolve()
        if root.resolve() not in path.parents:
            result.skipped.append(
                SkippedImage(file_name, "file_name points outside the folder", row_no)
            )
            continue
        if not path.is_file():
            result.skipped.append(SkippedImage(file_name, "missing file", row_no))
            continue
        data = path.read_bytes()
        problem = image_problem(data)
        if problem:
            result.skipped.append(SkippedImage(file_name, problem, row_no))
            continue
        if not caption:
            result.skipped.append(SkippedImage(file_name, "empty caption", row_no))
            continue
        extra = {k: v for k, v in row.items() if k not in ("file_name", caption_key)}
        result.items.append(
            ImageCaptionItem(image_id(data), file_name, caption, path=path, extra=extra)
        )
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.suffix.lower() in IMAGE_SUFFIXES and rel not in seen:
            result.skipped.append(SkippedImage(rel, "not in metadata"))
    return result


def read_hub_dataset(
    dataset_id: str,
    split: str = "train",
    image_column: str = "image",
    caption_column: str | None = None,
    revision: str | None = None,
    limit: int | None = None,
) -> IngestResult:
    """Read an image-caption dataset from the Hugging Face Hub (needs network access).

    Images are taken undecoded (``Image(decode=False)``) and then fully decoded once to
    check them, so a broken image is reported and skipped instead of crashing the run.

    Example (needs the Hub; only the argument check runs offline):
        >>> read_hub_dataset("someone/image-descriptions", limit=0)
        Traceback (most recent call last):
        ...
        ValueError: limit must be >= 1, got 0
    """
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    import datasets

    try:
        ds = datasets.load_dataset(dataset_id, split=split, revision=revision)
    except Exception as err:  # offline, unknown id, private repo: one clear message
        raise RuntimeError(
            f"could not load {dataset_id!r} (split {split!r}) from the Hugging Face Hub: "
            f"{type(err).__name__}: {err}. Offline (HF_HUB_OFFLINE=1) only local imagefolders "
            "can be read."
        ) from None
    if image_column not in ds.column_names:
        raise ValueError(f"image column {image_column!r} not in {ds.column_names}")
    caption_key = pick_caption_column(list(ds.column_names), caption_column)
    ds = ds.cast_column(image_column, datasets.Image(decode=False))
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    result = IngestResult(source=f"hf://{dataset_id}@{revision or 'main'}/{split}")
    for i, row in enumerate(ds):
        cell = row[image_column] or {}
        data = cell.get("bytes")
        name = cell.get("path") or f"{split}-{i:06d}"
        if data is None and cell.get("path") and Path(cell["path"]).is_file():
            data = Path(cell["path"]).read_bytes()
        if data is None:
            result.skipped.append(SkippedImage(str(name), "no image bytes", i))
            continue
        problem = image_problem(data)
        caption = str(row.get(caption_key) or "").strip()
        if problem or not caption:
            result.skipped.append(SkippedImage(str(name), problem or "empty caption", i))
            continue
        extra = {k: v for k, v in row.items() if k not in (image_column, caption_key)}
        extra.setdefault("source", result.source)
        iid = image_id(data)
        file_name = f"{i:06d}-{Path(str(name)).name}" if cell.get("path") else f"{iid}.img"
        result.items.append(ImageCaptionItem(iid, file_name, caption, data=data, extra=extra))
    return result


def read_image_captions(
    source: str | Path, caption_column: str | None = None, **hub_kwargs: Any
) -> IngestResult:
    """Read a local imagefolder when ``source`` is a directory, else a Hub dataset id.

    Example:
        >>> read_image_captions("no-such-folder")
        Traceback (most recent call last):
        ...
        ValueError: no-such-folder is neither a local folder nor a Hub dataset id (owner/name)
    """
    if Path(source).is_dir():
        return read_imagefolder(source, caption_column)
    if Path(source).exists():
        raise ValueError(f"{source} exists but is not a directory (an imagefolder is a folder)")
    if "/" not in str(source):
        raise ValueError(f"{source} is neither a local folder nor a Hub dataset id (owner/name)")
    return read_hub_dataset(str(source), caption_column=caption_column, **hub_kwargs)
