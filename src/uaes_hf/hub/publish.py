"""A metric module as a Hub Space: its exact file set, checked, and its upload.

The file set of ``metrics/<name>/`` is every regular file of the folder except tests,
caches and hidden files: the module script ``<name>.py``, its card ``README.md`` (with the
Space's YAML header), ``app.py`` and ``requirements.txt``. Before anything is written or
pushed the set is checked: the card's header says ``sdk: gradio`` and ``app_file: app.py``,
and ``requirements.txt`` pins ``uaes-hf==<this version>`` (a Space built against another
version of the library would compute with other code). :func:`stage` copies the set to a
folder (``--dry-run`` stops there); :func:`push` uploads that folder with
``huggingface_hub`` (token from ``HF_TOKEN``, never printed).

Example (from a checkout, where the module folders are):
    >>> import tempfile, uaes_hf
    >>> module = Path(uaes_hf.__file__).parents[2] / "metrics" / "cka"
    >>> out = stage(module, Path(tempfile.mkdtemp()) / "space")
    >>> sorted(p.name for p in out.iterdir())
    ['README.md', 'app.py', 'cka.py', 'requirements.txt']
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

EXCLUDED_NAMES = {"tests.py", "__pycache__"}


def module_files(module_dir: Path) -> list[Path]:
    """The files of a metric module folder that belong on its Space (sorted, relative)."""
    module_dir = Path(module_dir)
    if not module_dir.is_dir():
        raise ValueError(f"{module_dir}: no such metric module folder")
    files = []
    for path in sorted(module_dir.rglob("*")):
        relative = path.relative_to(module_dir)
        if any(part in EXCLUDED_NAMES or part.startswith(".") for part in relative.parts):
            continue
        if path.suffix in (".pyc", ".pyo") or not path.is_file():
            continue
        files.append(relative)
    return files


def front_matter(card: str) -> dict[str, Any]:
    """The YAML header of a card (``---`` ... ``---``), or an error naming what is missing."""
    import yaml

    match = re.match(r"^---\n(.*?)\n---\n", card, flags=re.DOTALL)
    if not match:
        raise ValueError("README.md has no YAML header (--- ... ---) for the Space")
    meta = yaml.safe_load(match.group(1)) or {}
    if not isinstance(meta, dict):
        raise ValueError("README.md's YAML header is not a mapping")
    return meta


def check_module(module_dir: Path, version: str | None = None) -> list[Path]:
    """Check a module folder for publication; returns its file set.

    Example:
        >>> check_module(Path("/nonexistent"))
        Traceback (most recent call last):
        ...
        ValueError: /nonexistent: no such metric module folder
    """
    from uaes_hf import __version__

    version = version or __version__
    module_dir = Path(module_dir)
    files = module_files(module_dir)
    names = {str(path) for path in files}
    script = f"{module_dir.name}.py"
    missing = [
        name for name in (script, "README.md", "app.py", "requirements.txt") if name not in names
    ]
    if missing:
        raise ValueError(f"{module_dir}: missing {', '.join(missing)} (a metric Space needs them)")
    meta = front_matter((module_dir / "README.md").read_text(encoding="utf-8"))
    if meta.get("sdk") != "gradio" or meta.get("app_file") != "app.py":
        raise ValueError(
            f"{module_dir}/README.md: the header must say sdk: gradio and app_file: app.py, "
            f"got sdk={meta.get('sdk')!r}, app_file={meta.get('app_file')!r}"
        )
    pins = (module_dir / "requirements.txt").read_text(encoding="utf-8").split()
    if f"uaes-hf=={version}" not in pins:
        raise ValueError(
            f"{module_dir}/requirements.txt must pin uaes-hf=={version} (the installed "
            f"library's version), so that the Space computes with this code"
        )
    return files


def stage(module_dir: Path, out: Path) -> Path:
    """Copy the module's checked file set to ``out`` (created; must not hold other files)."""
    module_dir, out = Path(module_dir), Path(out)
    files = check_module(module_dir)
    if out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} exists and is not empty; give a new folder for the Space files")
    for relative in files:
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(module_dir / relative, target)
    return out


def push(staged: Path, repo_id: str, *, private: bool = False) -> str:
    """Create (or reuse) the Space ``repo_id`` and upload a staged folder; returns its URL.

    The token comes from ``HF_TOKEN`` only and is never printed or logged.
    """
    check_repo_id(repo_id)
    token = os.environ.get("HF_TOKEN")
    if not token:
        raise ValueError("set HF_TOKEN in the environment (a Hub token with write access)")
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    api = HfApi(token=token)
    try:
        url = api.create_repo(
            repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True
        )
        api.upload_folder(
            repo_id=repo_id,
            repo_type="space",
            folder_path=str(staged),
            commit_message=f"Publish the {Path(staged).name} metric module (uaes publish)",
        )
    except OfflineModeIsEnabled as err:
        raise ValueError("the Hub is switched off here (HF_HUB_OFFLINE=1); use --dry-run") from err
    except HfHubHTTPError as err:
        status = getattr(err.response, "status_code", "?")
        raise ValueError(f"the Hub refused the upload to {repo_id} (HTTP {status})") from err
    except Exception as err:  # any other failure of the remote side: one line, token-free
        message = f"{type(err).__name__}: {err}".replace(token, "***")
        raise ValueError(f"the upload to {repo_id} failed ({message})") from err
    return str(url)


def check_repo_id(repo_id: str) -> str:
    """``ORG/NAME`` with Hub-safe characters."""
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*", repo_id or ""):
        raise ValueError(f"--repo must look like ORG/NAME, got {repo_id!r}")
    return repo_id
