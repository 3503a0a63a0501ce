"""A dataset repo folder exactly as pushed to the Hub, its publication, and its loading.

Layout (what ``load_dataset(folder, "<config>")`` reads offline)::

    folder/README.md                                  card: YAML configs + dataset_info
    folder/data/<config>/<split>-00000-of-00001.parquet
    folder/<extra files>                              e.g. build_report.json, figures

On the Hub, ``load_dataset(repo, revision="aligned_5")`` must work as well, so
:func:`publish` pushes the folder to ``main`` and then creates one branch per other config
whose README marks that config as the default. ``datasets`` ignores ``revision=`` for a local
folder, so :func:`load_dataset_repo` maps ``revision`` to the config name there and rejects
an unknown one with the list of those available.

Generic over features: an ``Image`` column (the image-poem-text dataset) is embedded into
the parquet as bytes, as ``push_to_hub`` does, so the folder is self-contained.

Example:
    >>> write_dataset_repo("out", [ConfigData("main", rows, default=True)],
    ...                    card_yaml={"license": "mit"}, card_body="# Card")  # doctest: +SKIP
    >>> load_dataset_repo("out", revision="main", split="train")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SPLIT = "train"
# Dataset-card templates ship inside the package (package data), so a wheel builds full cards.
CARD_TEMPLATES = Path(__file__).resolve().parent / "card_templates"


def card_template(name: str) -> Path:
    """The path of a dataset-card template shipped with the package (``poems.md``, ...).

    Example:
        >>> card_template("poems.md").is_file()
        True
    """
    return CARD_TEMPLATES / name


@dataclass
class ConfigData:
    """One config of a dataset repo: rows (list of dicts or a ``datasets.Dataset``)."""

    name: str
    rows: Any
    features: Any = None
    default: bool = False
    split: str = SPLIT


@dataclass(frozen=True)
class PublishStep:
    """One operation of :func:`publish`: the branch and the README it carries."""

    branch: str
    config: str
    readme: str
    creates_branch: bool = field(default=True)


def size_category(n: int) -> str:
    """The Hub's ``size_categories`` label for ``n`` rows.

    Example:
        >>> size_category(800), size_category(5000), size_category(2_000_000)
        ('n<1K', '1K<n<10K', '1M<n<10M')
    """
    bounds = [
        (1_000, "n<1K"),
        (10_000, "1K<n<10K"),
        (100_000, "10K<n<100K"),
        (1_000_000, "100K<n<1M"),
        (10_000_000, "1M<n<10M"),
        (100_000_000, "10M<n<100M"),
        (1_000_000_000, "100M<n<1B"),
    ]
    for bound, label in bounds:
        if n < bound:
            return label
    return "n>1T" if n >= 1_000_000_000_000 else "1B<n<10B"


def _to_dataset(config: ConfigData) -> Any:
    from datasets import Dataset

    if isinstance(config.rows, Dataset):
        return config.rows if config.features is None else config.rows.cast(config.features)
    rows = list(config.rows)
    if not rows:  # datasets cannot load a parquet config with no rows ("corresponds to no data")
        raise ValueError(f"config {config.name!r} has no rows; leave it out of the repo instead")
    return Dataset.from_list(rows, features=config.features)


def _embed_external_files(dataset: Any) -> Any:
    """Put image/audio bytes into the table (as ``push_to_hub`` does) before writing."""
    from datasets.features.features import require_storage_embed
    from datasets.table import embed_table_storage

    if not require_storage_embed(dataset.features):
        return dataset
    embedded = dataset.with_format("arrow").map(embed_table_storage, batched=True)
    return embedded.with_format(None)


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """``(yaml_dict, body)`` of a card; a card without front matter gives ``({}, text)``."""
    if text.startswith("---\n"):
        end = text.find("\n---", 4)
        if end != -1:
            meta = yaml.safe_load(text[4:end]) or {}
            body = text[end + 4 :].lstrip("\n")
            return meta, body
    return {}, text


def render_card(meta: dict[str, Any], body: str) -> str:
    """Card text from a YAML dict and a Markdown body."""
    head = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=100)
    return f"---\n{head}---\n\n{body.rstrip()}\n"


def write_dataset_repo(
    folder: str | Path,
    configs: Sequence[ConfigData],
    *,
    card_yaml: dict[str, Any] | None = None,
    card_body: str = "",
    extra_files: dict[str, str | Path | bytes] | None = None,
) -> Path:
    """Write every config as parquet under ``data/<config>/`` and the card ``README.md``.

    ``card_yaml`` holds the static metadata (license, language, task_categories, ...);
    ``configs``, ``dataset_info`` and ``size_categories`` are computed here. Exactly one
    config must be ``default``. Old shards of a rewritten config are removed first.

    Example:
        >>> write_dataset_repo(tmp, [ConfigData("main", [{"a": 1}], default=True)])  # doctest: +SKIP
    """
    from datasets import DatasetInfo, SplitDict, SplitInfo

    if not configs:
        raise ValueError("write_dataset_repo needs at least one config")
    names = [c.name for c in configs]
    if len(set(names)) != len(names):
        raise ValueError(f"config names must be unique, got {names}")
    defaults = [c.name for c in configs if c.default]
    if len(defaults) != 1:
        raise ValueError(f"exactly one config must be default=True, got {defaults or 'none'}")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    yaml_configs, yaml_infos, largest = [], [], 0
    datasets_by_name = {c.name: _to_dataset(c) for c in configs}  # validate all before writing
    for config in configs:
        dataset = _embed_external_files(datasets_by_name[config.name])
        out_dir = folder / "data" / config.name
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True)
        shard = out_dir / f"{config.split}-00000-of-00001.parquet"
        dataset.to_parquet(str(shard))
        entry: dict[str, Any] = {"config_name": config.name}
        if config.default:
            entry["default"] = True
        entry["data_files"] = [
            {"split": config.split, "path": f"data/{config.name}/{config.split}-*.parquet"}
        ]
        yaml_configs.append(entry)
        splits = SplitDict()
        splits.add(
            SplitInfo(name=config.split, num_bytes=dataset.data.nbytes, num_examples=len(dataset))
        )
        info = DatasetInfo(
            features=dataset.features,
            splits=splits,
            download_size=shard.stat().st_size,
            dataset_size=dataset.data.nbytes,
        )
        yaml_infos.append({"config_name": config.name, **info._to_yaml_dict()})
        largest = max(largest, len(dataset))
    meta = dict(card_yaml or {})
    meta["size_categories"] = [size_category(largest)]
    meta["configs"] = yaml_configs
    meta["dataset_info"] = yaml_infos
    (folder / "README.md").write_text(render_card(meta, card_body), encoding="utf-8")
    for name, content in (extra_files or {}).items():
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        elif Path(content).resolve() != target.resolve():
            shutil.copyfile(content, target)
    return folder


def repo_configs(folder: str | Path) -> tuple[list[str], str | None]:
    """Config names declared in a repo folder's README and the default one.

    Example:
        >>> repo_configs("poems_repo")  # doctest: +SKIP
        (['main', 'large', 'aligned_5', 'aligned_s'], 'main')
    """
    readme = Path(folder) / "README.md"
    if not readme.is_file():
        raise ValueError(f"{str(folder)!r} is not a dataset repo folder: no README.md")
    meta, _ = split_front_matter(readme.read_text(encoding="utf-8"))
    entries = meta.get("configs") or []
    names = [e["config_name"] for e in entries]
    default = next((e["config_name"] for e in entries if e.get("default")), None)
    if default is None and "default" in names:
        default = "default"
    return names, default


def branch_card(readme_text: str, config: str) -> str:
    """The README of branch ``config``: the same card with ``config`` as the default.

    Example:
        >>> text = render_card({"configs": [{"config_name": "main", "default": True},
        ...                                 {"config_name": "aligned_5"}]}, "# x")
        >>> meta, _ = split_front_matter(branch_card(text, "aligned_5"))
        >>> [(c["config_name"], c.get("default", False)) for c in meta["configs"]]
        [('aligned_5', True), ('main', False)]
    """
    meta, body = split_front_matter(readme_text)
    entries = meta.get("configs") or []
    if config not in [e["config_name"] for e in entries]:
        raise ValueError(
            f"unknown config {config!r}; available: {[e['config_name'] for e in entries]}"
        )
    reordered = []
    for entry in entries:
        entry = {k: v for k, v in entry.items() if k != "default"}
        if entry["config_name"] == config:
            reordered.insert(0, {"config_name": config, "default": True, **entry})
        else:
            reordered.append(entry)
    meta["configs"] = reordered
    note = (
        f'> Branch `{config}`: `load_dataset(repo_id, revision="{config}")` loads the '
        f"`{config}` config by default; every config is also on `main`.\n\n"
    )
    return render_card(meta, note + body)


def publish_plan(folder: str | Path) -> list[PublishStep]:
    """What :func:`publish` does after uploading the folder to ``main``: one branch per
    non-default config, each with the README from :func:`branch_card`."""
    names, default = repo_configs(folder)
    readme = (Path(folder) / "README.md").read_text(encoding="utf-8")
    steps = []
    for name in names:
        if name == default:
            continue
        if name == "main":  # the main branch already exists and keeps the default config
            continue
        steps.append(PublishStep(branch=name, config=name, readme=branch_card(readme, name)))
    return steps


def materialize_branch(folder: str | Path, config: str, dest: str | Path) -> Path:
    """A local copy of what branch ``config`` holds on the Hub (to check it offline)."""
    folder, dest = Path(folder), Path(dest)
    readme = (folder / "README.md").read_text(encoding="utf-8")
    card = branch_card(readme, config)
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(folder, dest)
    (dest / "README.md").write_text(card, encoding="utf-8")
    return dest


def publish(
    folder: str | Path,
    repo_id: str,
    *,
    token: str | None = None,
    private: bool = False,
    branches: bool = True,
    commit_message: str = "Upload dataset",
) -> dict[str, Any]:
    """Push the folder to the Hub dataset ``repo_id`` and create one branch per config.

    The token comes from ``token`` or ``$HF_TOKEN`` and is never printed. Each branch is
    re-created from the fresh ``main`` so it never keeps stale data.

    Example:
        >>> publish("poems_repo", "my-org/poems")  # doctest: +SKIP
    """
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    token = token or os.environ.get("HF_TOKEN")
    if not token:
        raise ValueError("publishing needs a Hugging Face token: set HF_TOKEN (write access)")
    names, default = repo_configs(folder)
    if not names:
        raise ValueError(f"{str(folder)!r} declares no configs in README.md")
    plan = publish_plan(folder) if branches else []
    api = HfApi(token=token)
    url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(
        repo_id=repo_id,
        folder_path=str(folder),
        repo_type="dataset",
        commit_message=commit_message,
        delete_patterns=["data/**"],
    )
    done = []
    for step in plan:
        with contextlib.suppress(HfHubHTTPError):  # the branch may not exist yet
            api.delete_branch(repo_id, branch=step.branch, repo_type="dataset")
        api.create_branch(repo_id, branch=step.branch, revision="main", repo_type="dataset")
        api.upload_file(
            path_or_fileobj=step.readme.encode("utf-8"),
            path_in_repo="README.md",
            repo_id=repo_id,
            repo_type="dataset",
            revision=step.branch,
            commit_message=f"Make {step.config} the default config of branch {step.branch}",
        )
        done.append(step.branch)
    return {"repo": str(url), "default_config": default, "branches": ["main", *done]}


def load_dataset_repo(
    path_or_repo_id: str | Path,
    revision: str | None = None,
    config: str | None = None,
    split: str | None = None,
    **kwargs: Any,
) -> Any:
    """``load_dataset`` that honours ``revision=`` for a local folder too.

    Local folder: ``revision`` names a config (the branch of the same name on the Hub holds
    that config as its default); unknown names raise ``ValueError`` listing the available
    ones. Hub id: passed through to ``datasets.load_dataset`` (an unknown revision is
    reported with the repo's branches when they can be listed).

    Example:
        >>> ds = load_dataset_repo("poems_repo", revision="aligned_5", split="train")  # doctest: +SKIP
    """
    from datasets import load_dataset

    path = Path(path_or_repo_id)
    if path.is_dir():
        names, default = repo_configs(path)
        if revision is not None and config is not None and revision != config:
            raise ValueError(
                f"revision={revision!r} and config={config!r} disagree; for a local folder "
                "the revision is the config name, so pass one of them"
            )
        name = config or revision or default
        if name not in names:
            asked = "revision" if revision is not None else "config"
            raise ValueError(
                f"unknown {asked} {name!r} for dataset folder {str(path)!r}; available: {names}"
            )
        return load_dataset(str(path), name, split=split, **kwargs)
    if str(path_or_repo_id).startswith((".", "/", "~")):
        raise ValueError(f"dataset folder {str(path_or_repo_id)!r} does not exist")
    try:
        return load_dataset(str(path_or_repo_id), config, revision=revision, split=split, **kwargs)
    except Exception as err:
        if revision is None:
            raise
        branches = _hub_branches(str(path_or_repo_id))
        if branches is not None and revision not in branches:
            raise ValueError(
                f"unknown revision {revision!r} for {path_or_repo_id}; branches: {branches}"
            ) from err
        raise


def _hub_branches(repo_id: str) -> list[str] | None:
    try:
        from huggingface_hub import HfApi

        refs = HfApi().list_repo_refs(repo_id, repo_type="dataset")
    except Exception:  # offline or no access: keep the original error
        return None
    return sorted(branch.name for branch in refs.branches)


def load_poems(
    path_or_repo: str | Path,
    revision: str | None = None,
    config: str | None = None,
    split: str | None = None,
    **kwargs: Any,
) -> Any:
    """Load the poems dataset (local folder or Hub repo); ``revision`` picks the branch.

    Configs: ``main`` (default, annotated set), ``large``, ``aligned_5`` (length-aligned to
    the plain texts, with replacement), ``aligned_s`` (without replacement).

    Example:
        >>> ds = load_poems("poems_repo", revision="aligned_5")  # doctest: +SKIP
        >>> ds["train"][0]["form_category"]  # doctest: +SKIP
        'formatted'
    """
    return load_dataset_repo(path_or_repo, revision=revision, config=config, split=split, **kwargs)
