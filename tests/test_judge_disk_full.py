"""A full disk, for real: `uaes annotate poems` with its store on a tiny tmpfs (mounted in a
private mount namespace by `unshare`, no root needed). The run ends with one clear message,
every answer the server was paid for is in the store, and a rerun elsewhere continues."""

from __future__ import annotations

import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from openai_server import FakeOpenAIServer

UNSHARE = ["unshare", "--user", "--map-root-user", "--mount"]


def _can_mount_tmpfs() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        [*UNSHARE, "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt 2>/dev/null || "
         "mount -t tmpfs -o size=64k tmpfs /tmp"],
        capture_output=True, timeout=30,
    )  # fmt: skip
    return probe.returncode == 0


pytestmark = pytest.mark.skipif(
    not _can_mount_tmpfs(), reason="needs `unshare` with user namespaces to mount a tiny tmpfs"
)


def command(poems: Path, server: FakeOpenAIServer, store: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "uaes_hf.cli", "annotate", "poems", str(poems),
            "--base-url", server.base_url, "--store", str(store), "--out", str(out),
            "--no-progress", "--concurrency", "4", "--backoff-base", "0.01"]  # fmt: skip


def ok_hashes(store: Path) -> set[str]:
    conn = sqlite3.connect(store)
    try:
        return {h for (h,) in conn.execute("SELECT input_hash FROM results WHERE status='ok'")}
    finally:
        conn.close()


@pytest.mark.slow
def test_full_disk_keeps_every_paid_result_and_resumes(tmp_path: Path) -> None:
    poems, mount, kept = tmp_path / "poems.txt", tmp_path / "mnt", tmp_path / "kept"
    mount.mkdir()
    kept.mkdir()
    poems.write_text(
        "\n---\n".join(f"Poem {i}\nthe {i}th wave\nbreaks on {i * 7}" for i in range(300))
    )
    env = {**os.environ, "OPENAI_API_KEY": "sk-test", "HF_HUB_OFFLINE": "1"}
    with FakeOpenAIServer(response_delay_s=0.01) as server:
        inner = shlex.join(command(poems, server, mount / "r.sqlite", tmp_path / "o.csv"))
        # 2.6 MB: the store's 2 MiB reserve file fits, and a few dozen results after it
        script = (
            f"mount -t tmpfs -o size=2600k tmpfs {shlex.quote(str(mount))} && "
            f"{{ {inner}; echo $? > {shlex.quote(str(kept / 'rc'))}; }}; "
            f"cp -a {shlex.quote(str(mount))}/. {shlex.quote(str(kept))}/"
        )
        run = subprocess.run([*UNSHARE, "sh", "-c", script], env=env, capture_output=True,
                             text=True, timeout=300)  # fmt: skip
        paid = {r["item_key"] for r in server.chat_requests() if "usage" in r}
        stored = ok_hashes(kept / "r.sqlite")
        assert (kept / "rc").read_text().strip() == "4", run.stderr[-2000:]
        assert run.stderr.count("error:") == 1 and "is full" in run.stderr
        assert "Traceback" not in run.stderr
        assert 0 < len(paid) < 300  # it ran out of space part way
        assert stored == paid  # every answer paid for is in the store
        assert not (kept / "r.sqlite.reserve").exists()  # the reserve gave its space

        n_before = len(server.chat_requests())
        rerun = subprocess.run(
            command(poems, server, kept / "r.sqlite", tmp_path / "o.csv"),
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        again = {r["item_key"] for r in server.chat_requests()[n_before:]}
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert not again & paid and len(again) == 300 - len(paid)  # only what was missing
    assert len(ok_hashes(kept / "r.sqlite")) == 300
