"""Build the embedded image-caption sample from photos that ship inside installed packages.

The sample needs no network: its images come from scikit-image (``skimage/data``),
scikit-learn (``sklearn/datasets/images``) and the Debian wallpaper packages
``mate-backgrounds`` and ``ukui-wallpapers``; its captions were written for this project by
looking at each image and are kept in ``image_captions.csv`` next to this module, with each
image's license and credit. Nothing copyrighted is stored in the repository: the images are
copied at setup from the installed packages.

What the builder does to each image (documented in the dataset card):

- transparency is composited over the background the wallpaper package itself declares
  (``/usr/share/mate-background-properties/*.xml``: a two-colour gradient); other
  transparent images are composited over white;
- the image is converted to RGB and downscaled (Lanczos) so its longer side is at most
  ``max_side`` (1024 by default) and saved as JPEG (quality 92), so the published parquet
  stays small; smaller images keep their size.

An image whose package is not installed is reported and skipped.

Example (built once into the cache, then reused):
    >>> result = build_embedded_imagefolder(progress=False)
    >>> result.folder.name, result.n_images + len(result.missing)
    ('embedded_images', 50)
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from uaes_hf.paths import cache_dir

CAPTIONS_RESOURCE = "image_captions.csv"
CAPTION_TABLE_COLUMNS: tuple[str, ...] = (
    "source_package",
    "path_in_package",
    "caption",
    "license",
    "credit",
)
METADATA_COLUMNS: tuple[str, ...] = (
    "file_name",
    "caption",
    "source_package",
    "path_in_package",
    "license",
    "credit",
)
DEFAULT_MAX_SIDE = 1024
JPEG_QUALITY = 92
_COMPLETE = ".uaes-complete"

# Installable sources of the sample: what `apt-get install` / `pip install` provides them.
SOURCE_PACKAGES: dict[str, str] = {
    "scikit-image": "pip: scikit-image (BSD-3-Clause package; per-image licenses in the table)",
    "scikit-learn": "pip: scikit-learn (BSD-3-Clause package; images CC-BY-2.0)",
    "mate-backgrounds": "apt: mate-backgrounds (GPL-2+ / CC-BY-SA-4.0)",
    "ukui-wallpapers": "apt: ukui-wallpapers (CC-BY-SA-3.0)",
}

# The background MATE paints behind its semi-transparent wallpapers (from
# /usr/share/mate-background-properties/mate-*.xml): (gradient direction, from, to).
MATE_BACKGROUNDS: dict[str, tuple[str, str, str]] = {
    "/usr/share/backgrounds/mate/abstract/Flow.png": ("horizontal", "#27587E", "#627F5A"),
    "/usr/share/backgrounds/mate/abstract/Gulp.png": ("horizontal", "#627F5A", "#27587E"),
    "/usr/share/backgrounds/mate/abstract/Silk.png": ("horizontal", "#27587E", "#627F5A"),
    "/usr/share/backgrounds/mate/abstract/Spring.png": ("vertical", "#27587E", "#627F5A"),
    "/usr/share/backgrounds/mate/abstract/Waves.png": ("horizontal", "#27587E", "#627F5A"),
}


@dataclass(frozen=True)
class CaptionEntry:
    """One row of ``image_captions.csv``."""

    source_package: str
    path_in_package: str
    caption: str
    license: str
    credit: str

    @property
    def file_name(self) -> str:
        """File name inside the built imagefolder, e.g. ``scikit-image__astronaut.jpg``."""
        stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(self.path_in_package).stem).strip("-")
        return f"{self.source_package}__{stem}.jpg"


@dataclass
class EmbeddedBuildResult:
    """Where the imagefolder is, how many images it holds, and what was missing."""

    folder: Path
    n_images: int
    missing: list[str] = field(default_factory=list)
    rebuilt: bool = True


def load_caption_table(path: str | Path | None = None) -> list[CaptionEntry]:
    """Read the caption table (the packaged ``image_captions.csv`` by default).

    Example:
        >>> entries = load_caption_table()
        >>> len(entries) >= 30 and all(e.caption and e.license for e in entries)
        True
    """
    if path is None:
        text = resources.files("uaes_hf.data").joinpath(CAPTIONS_RESOURCE).read_text("utf-8")
        where = CAPTIONS_RESOURCE
    else:
        text = Path(path).read_text(encoding="utf-8")
        where = str(path)
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in CAPTION_TABLE_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise ValueError(f"{where} lacks columns {missing}; has {reader.fieldnames}")
    entries = [
        CaptionEntry(**{c: (row[c] or "").strip() for c in CAPTION_TABLE_COLUMNS}) for row in reader
    ]
    for i, entry in enumerate(entries, start=2):
        if not (entry.caption and entry.license and entry.path_in_package):
            raise ValueError(f"{where} row {i}: caption, license and path_in_package are required")
    names = [e.file_name for e in entries]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"{where}: duplicate output file names {dupes}")
    return entries


def caption_table_hash() -> str:
    """SHA-256 (16 hex) of the packaged caption table: the built folder is tied to it."""
    data = resources.files("uaes_hf.data").joinpath(CAPTIONS_RESOURCE).read_bytes()
    return hashlib.sha256(data).hexdigest()[:16]


def resolve_source(entry: CaptionEntry) -> Path:
    """The installed file an entry refers to (it may not exist).

    An absolute ``path_in_package`` is a Debian file; a relative one starts with a Python
    import name (``skimage/data/astronaut.png``), found without importing the package.

    Example:
        >>> resolve_source(CaptionEntry("x", "/usr/share/a.jpg", "c", "l", "c"))
        PosixPath('/usr/share/a.jpg')
    """
    path = Path(entry.path_in_package)
    if path.is_absolute():
        return path
    top, *rest = path.parts
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        return Path("/nonexistent") / entry.path_in_package
    return Path(list(spec.submodule_search_locations)[0]).joinpath(*rest)


def _hex_rgb(value: str) -> tuple[int, int, int]:
    value = value.lstrip("#")
    return (int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16))


def gradient_background(size: tuple[int, int], direction: str, start: str, end: str) -> Any:
    """A linear two-colour gradient image (``direction``: horizontal or vertical).

    Example:
        >>> gradient_background((3, 1), "horizontal", "#000000", "#ffffff").getpixel((2, 0))
        (255, 255, 255)
    """
    import numpy as np
    from PIL import Image

    width, height = size
    n = width if direction == "horizontal" else height
    t = np.linspace(0.0, 1.0, n)[:, None]
    ramp = (1 - t) * np.array(_hex_rgb(start), float) + t * np.array(_hex_rgb(end), float)
    if direction == "horizontal":
        arr = np.broadcast_to(ramp[None, :, :], (height, width, 3))
    elif direction == "vertical":
        arr = np.broadcast_to(ramp[:, None, :], (height, width, 3))
    else:
        raise ValueError(f"direction must be 'horizontal' or 'vertical', got {direction!r}")
    return Image.fromarray(np.rint(arr).astype(np.uint8), "RGB")


def prepare_image(source: Path, max_side: int = DEFAULT_MAX_SIDE) -> Any:
    """Open a packaged image as the RGB picture that goes into the sample.

    Example (a half-transparent 2000 x 500 PNG: composited over white, downscaled):
        >>> import tempfile
        >>> from PIL import Image
        >>> path = Path(tempfile.mkdtemp()) / "wide.png"
        >>> Image.new("RGBA", (2000, 500), (255, 0, 0, 128)).save(path)
        >>> picture = prepare_image(path)
        >>> picture.mode, picture.size, picture.getpixel((0, 0))
        ('RGB', (1024, 256), (255, 127, 127))
    """
    from PIL import Image

    if max_side < 16:
        raise ValueError(f"max_side must be >= 16 pixels, got {max_side}")
    with Image.open(source) as img:
        img.load()
        if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
            rgba = img.convert("RGBA")
            declared = MATE_BACKGROUNDS.get(str(source))
            if declared:
                background = gradient_background(rgba.size, *declared).convert("RGBA")
            else:
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            rgb = Image.alpha_composite(background, rgba).convert("RGB")
        else:
            rgb = img.convert("RGB")
    if max(rgb.size) > max_side:
        scale = max_side / max(rgb.size)
        new_size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        rgb = rgb.resize(new_size, Image.Resampling.LANCZOS)
    return rgb


def default_embedded_dir() -> Path:
    """``cache_dir("data", "embedded_images")``."""
    return cache_dir("data", "embedded_images")


def build_embedded_imagefolder(
    out_dir: str | Path | None = None,
    max_side: int = DEFAULT_MAX_SIDE,
    overwrite: bool = False,
    progress: bool = True,
) -> EmbeddedBuildResult:
    """Copy the packaged photos into an imagefolder with ``metadata.csv`` (built once).

    The folder is written to a temporary sibling and renamed into place, so an interrupted
    build never leaves a half-written folder; a finished folder built from the same caption
    table is reused unless ``overwrite``.

    Example:
        >>> folder = build_embedded_imagefolder(progress=False).folder
        >>> sorted(p.name for p in folder.iterdir() if p.suffix == ".csv")
        ['metadata.csv']
    """
    target = Path(out_dir) if out_dir is not None else default_embedded_dir()
    stamp = f"{caption_table_hash()}:{max_side}"
    marker = target / _COMPLETE
    if not overwrite and marker.is_file() and marker.read_text().strip() == stamp:
        n = sum(1 for _ in (target / "metadata.csv").open(encoding="utf-8")) - 1
        return EmbeddedBuildResult(target, n, [], rebuilt=False)
    entries = load_caption_table()
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    missing: list[str] = []
    rows: list[dict[str, str]] = []
    try:
        iterator: Any = entries
        if progress:
            from tqdm.auto import tqdm

            iterator = tqdm(entries, desc="embedded images", unit="img")
        for entry in iterator:
            source = resolve_source(entry)
            if not source.is_file():
                missing.append(f"{entry.source_package}:{entry.path_in_package}")
                continue
            image = prepare_image(source, max_side)
            image.save(scratch / entry.file_name, "JPEG", quality=JPEG_QUALITY, optimize=True)
            rows.append(
                {
                    "file_name": entry.file_name,
                    "caption": entry.caption,
                    "source_package": entry.source_package,
                    "path_in_package": entry.path_in_package,
                    "license": entry.license,
                    "credit": entry.credit,
                }
            )
        if not rows:
            raise RuntimeError(
                "none of the packaged images was found; install scikit-image, scikit-learn, "
                "mate-backgrounds or ukui-wallpapers"
            )
        with (scratch / "metadata.csv").open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(METADATA_COLUMNS))
            writer.writeheader()
            writer.writerows(rows)
        (scratch / _COMPLETE).write_text(stamp + "\n")
        if target.exists():
            old = target.with_name(f".{target.name}-old-{os.getpid()}")
            target.rename(old)
            scratch.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            scratch.rename(target)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return EmbeddedBuildResult(target, len(rows), missing, rebuilt=True)
