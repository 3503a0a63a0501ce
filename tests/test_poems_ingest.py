"""Ingest of the Kaggle layout and tables, normalisation, duplicates, copyright cut."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from uaes_hf.data.cleaning import cut_copyright, is_copyright_line
from uaes_hf.data.ingest import (
    merge_duplicates,
    normalize_text,
    parse_poem_filename,
    read_poems_folder,
)
from uaes_hf.data.records import content_id

SONNET = "Shall I compare thee to a summer's day?\nThou art more lovely and more temperate:"


def _write(root: Path, rel: str, data: str | bytes) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


@pytest.fixture
def kaggle_dir(tmp_path: Path) -> Path:
    root = tmp_path / "raw"
    # the same poem in a form folder and a topic folder, with different whitespace/CRLF
    _write(root, "forms/sonnet/SonnetPoemsSonnet18PoembyWilliamShakespeare.txt", SONNET + "\n")
    _write(
        root,
        "topics/love/LovePoemsSonnet18PoembyWilliamShakespeare.txt",
        ("  " + SONNET.replace("\n", "  \r\n") + "\r\n\r\n\r\n").encode("utf-8"),
    )
    _write(
        root,
        "forms/haiku/OldPondTranslationPoembyMatsuoBasho.txt",
        "old pond\nfrog jumps in\nsound of water",
    )
    _write(root, "forms/haiku/BinaryPoembyNobody.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    _write(root, "forms/haiku/EmptyPoembyNobody.txt", " \n\t\n")
    _write(
        root, "forms/ode/CafePoembyAnon.txt", "Un caf\xe9 au lait\nsous la pluie".encode("latin-1")
    )
    (root / "forms/ode/BrokenLinkPoembyAnon.txt").symlink_to(root / "missing-target.txt")
    _write(root, "extra/bad.csv", "title,author,text\nA,B,some text\n")  # no 'form' column
    _write(
        root,
        "extra/good.csv",
        'title,author,form,text,topic\nRain,Ann Lee,free-verse,"the rain\nfalls",weather\n'
        "Blank,Ann Lee,haiku,,\n",
    )
    _write(
        root,
        "extra/rows.jsonl",
        '{"title": "J", "author": "K", "form": "Haiku", "text": "a b c"}\n',
    )
    return root


def test_read_folder_merges_reports_and_skips(kaggle_dir: Path) -> None:
    result = read_poems_folder(kaggle_dir)
    reasons = {b.path: b.reason for b in result.bad}
    assert "binary" in reasons["forms/haiku/BinaryPoembyNobody.txt"]
    assert "empty" in reasons["forms/haiku/EmptyPoembyNobody.txt"]
    assert "UTF-8" in reasons["forms/ode/CafePoembyAnon.txt"]
    assert "unreadable" in reasons["forms/ode/BrokenLinkPoembyAnon.txt"]
    assert "missing column" in reasons["extra/bad.csv"] and "form" in reasons["extra/bad.csv"]
    empty_row = [b for b in result.bad if b.path == "extra/good.csv"]
    assert len(empty_row) == 1 and empty_row[0].row == 3
    assert result.files_seen == 10

    merged, n_dup = merge_duplicates(result.poems)
    assert n_dup == 1
    sonnet = next(p for p in merged if p.text == SONNET)
    assert sonnet.forms == ("sonnet",) and sonnet.topics == ("love",)
    assert sonnet.title == "Sonnet 18" and sonnet.author == "William Shakespeare"
    assert len(sonnet.files) == 2
    haiku = next(p for p in merged if p.text.startswith("old pond"))
    assert haiku.is_translation and haiku.title == "Old Pond" and haiku.author == "Matsuo Basho"
    rain = next(p for p in merged if p.title == "Rain")
    assert (
        rain.forms == ("free-verse",)
        and rain.topics == ("weather",)
        and rain.text == "the rain\nfalls"
    )
    assert next(p for p in merged if p.title == "J").forms == ("haiku",)


def test_encoding_fallback_reads_latin1(kaggle_dir: Path) -> None:
    result = read_poems_folder(kaggle_dir, encoding_fallback="latin-1")
    assert any(p.text == "Un café au lait\nsous la pluie" for p in result.poems)
    assert not any("UTF-8" in b.reason for b in result.bad)


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        read_poems_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no poems"):
        read_poems_folder(tmp_path / "empty")


@pytest.mark.parametrize(
    ("name", "folder", "expected"),
    [
        ("ALittleBirdPoembyJohnDoe.txt", None, ("A Little Bird", "John Doe", False)),
        ("BlankVersePoemsNightPoembyAnnLee.txt", "blank-verse", ("Night", "Ann Lee", False)),
        ("Sonnet12PoembyW.txt", None, ("Sonnet 12", "W", False)),
        (
            "GitanjaliTranslationPoembyRabindranathTagore.txt",
            None,
            ("Gitanjali", "Rabindranath Tagore", True),
        ),
        ("NoAuthorHere.txt", None, ("No Author Here", "", False)),
    ],
)
def test_parse_filename(name: str, folder: str | None, expected: tuple) -> None:
    assert parse_poem_filename(name, folder) == expected


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_normalize_is_idempotent_and_nfc(text: str) -> None:
    once = normalize_text(text)
    assert normalize_text(once) == once
    assert unicodedata.is_normalized("NFC", once)
    assert "\r" not in once and "\n\n\n" not in once
    assert once == once.strip()


def test_same_poem_different_encoding_form_same_id() -> None:
    composed, decomposed = "Caf\u00e9 noir", "Cafe\u0301 noir"
    assert content_id(normalize_text(composed)) == content_id(normalize_text(decomposed))


def test_copyright_cut_study_example() -> None:
    poem = (
        "Afterward is an unknown term in future\nBefore that we face the present,\n"
        "Endeavor best early at present.\nCopyright \u00a9 Muzahidul Reza | 29 November,2017"
    )
    text, cut = cut_copyright(poem)
    assert cut and text.endswith("Endeavor best early at present.")
    assert "Copyright" not in text


def test_copyright_cut_drops_everything_after_first_mark() -> None:
    text, cut = cut_copyright("a\nb\n\n\u00a9\ufe0f 2019 me\nafter\n(c) again")
    assert cut and text == "a\nb"
    assert cut_copyright("I wrote \u00a9 inside a line\nok") == (
        "I wrote \u00a9 inside a line\nok",
        False,
    )
    assert [
        is_copyright_line(s) for s in ["(C) x", "  \u00a9x", "Copyright (c) y", "Copyright 2017"]
    ] == [
        True,
        True,
        True,
        False,
    ]
