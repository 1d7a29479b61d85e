"""Pieces shared by the static HTML pages (leaderboard, per-run report): the page shell and embedded pictures.

Pages are single files: styles and scripts inline, pictures as ``data:`` URIs, nothing fetched at view time.
Every piece of text from a record goes through :func:`html.escape` before it reaches the page.
"""

from __future__ import annotations

import base64
import html
from functools import cache
from importlib.resources import files
from pathlib import Path

__all__ = ["IMAGE_TYPES", "asset", "page", "data_uri", "image_data_uri"]

IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".svg": "image/svg+xml",
    ".webp": "image/webp",
}


@cache
def asset(name: str) -> str:
    """The text of ``harness/assets/<name>`` (a page's CSS or JavaScript, inlined by :func:`page`)."""
    return (files("harness") / "assets" / name).read_text(encoding="utf-8")


def page(title: str, body: str, *, style: str = "", script: str = "") -> str:
    """A complete HTML5 document.

    Args:
        title: plain text (escaped here).
        body: HTML, already escaped by the caller.
        style: CSS for an inline ``<style>`` element.
        script: JavaScript for an inline ``<script>`` element at the end of the body.
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>\n{style}</style>" if style else "",
        "</head>",
        "<body>",
        body,
        f"<script>\n{script}</script>" if script else "",
        "</body>",
        "</html>",
    ]
    return "\n".join(part for part in parts if part) + "\n"


def data_uri(content: bytes, mime: str) -> str:
    """``content`` as a base64 ``data:`` URI."""
    return f"data:{mime};base64,{base64.b64encode(content).decode('ascii')}"


def image_data_uri(path: Path) -> str | None:
    """The picture at ``path`` as a ``data:`` URI; None when it does not exist or is not a known image type."""
    mime = IMAGE_TYPES.get(path.suffix.lower())
    if mime is None or not path.is_file():
        return None
    return data_uri(path.read_bytes(), mime)
