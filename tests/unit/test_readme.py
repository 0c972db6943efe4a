"""README.md and README.ja.md stay in step: a change to one without the other fails here.

Prose is free to differ (it is a translation); structure, commands, settings and screenshots
are not.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
EN = ROOT / "README.md"
JA = ROOT / "README.ja.md"

_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
_HEADING = re.compile(r"^(#{1,6}) ", re.MULTILINE)
_IMAGE = re.compile(r'<img\s[^>]*src="([^"]+)"|!\[[^\]]*\]\(([^)\s]+)')
_SETTING = re.compile(r"\bGATE_[A-Z0-9_]+\b")


def _without_code(text: str) -> str:
    return _FENCE.sub("", text)


def _headings(text: str) -> list[int]:
    return [len(m.group(1)) for m in _HEADING.finditer(_without_code(text))]


def _images(text: str) -> list[str]:
    return [a or b for a, b in _IMAGE.findall(text)]


@pytest.fixture(scope="module")
def readmes() -> tuple[str, str]:
    return EN.read_text(encoding="utf-8"), JA.read_text(encoding="utf-8")


def test_each_readme_links_to_the_other_at_the_top(readmes: tuple[str, str]) -> None:
    en, ja = readmes
    assert "[日本語](README.ja.md)" in "\n".join(en.splitlines()[:4])
    assert "[English](README.md)" in "\n".join(ja.splitlines()[:4])


def test_both_readmes_have_the_same_sections(readmes: tuple[str, str]) -> None:
    en, ja = readmes
    assert _headings(en).count(2) >= 5
    assert _headings(ja) == _headings(en)


def test_both_readmes_have_the_same_code_blocks(readmes: tuple[str, str]) -> None:
    en, ja = readmes
    assert _FENCE.findall(en)
    assert _FENCE.findall(ja) == _FENCE.findall(en)


def test_both_readmes_name_the_same_settings(readmes: tuple[str, str]) -> None:
    en, ja = readmes
    assert set(_SETTING.findall(ja)) == set(_SETTING.findall(en))


def test_readme_screenshots_exist_and_both_readmes_show_them(readmes: tuple[str, str]) -> None:
    en, ja = readmes
    images = _images(en)
    assert {"docs/images/login.png", "docs/images/mfa-setup.png"} <= set(images)
    # The same pictures, but the account page's is in each README's own language.
    assert "docs/images/account-en.png" in images
    ja_images = _images(ja)
    assert [src.replace("account-ja", "account-en") for src in ja_images] == images
    for src in {*images, *ja_images}:
        path = ROOT / src
        assert path.is_file(), src
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", src
        assert path.stat().st_size < 200_000, src  # README images stay small
