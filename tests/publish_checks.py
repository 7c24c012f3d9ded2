"""Checks on a published board pack or dashboard: PDF pages rasterised and read, HTML parsed (issue 15)."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser
from typing import Any

import pypdfium2 as pdfium
from pypdf import PdfReader

A4_POINTS = (595.3, 841.9)


def pdf_pages(pdf: bytes) -> list[str]:
    """Each page's text, as a reader's copy-and-paste would get it."""
    return [page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages]


def rasterise(pdf: bytes, scale: float = 0.5) -> list[Any]:
    """Every page drawn to a bitmap (PIL images): a page that cannot be drawn fails here."""
    document = pdfium.PdfDocument(pdf)
    try:
        images = []
        for index in range(len(document)):
            page = document[index]
            width, height = page.get_size()
            assert abs(width - A4_POINTS[0]) < 2 and abs(height - A4_POINTS[1]) < 2, (index, width, height)
            images.append(page.render(scale=scale).to_pil())
            page.close()
        return images
    finally:
        document.close()


def inked(image: Any) -> bool:
    """Something is drawn on the page (not a blank sheet)."""
    grey = image.convert("L")
    lo, _hi = grey.getextrema()
    return bool(lo < 128)


def one_line(text: str) -> str:
    return " ".join(text.split())


class Page(HTMLParser):
    """What the accessibility and self-containment checks need from one HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lang: str | None = None
        self.headings: list[int] = []
        self.images: list[dict[str, str | None]] = []
        self.urls: list[str] = []
        self.skip_link = False
        self.viewport = False
        self._first_link = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "html":
            self.lang = a.get("lang")
        if re.fullmatch(r"h[1-6]", tag):
            self.headings.append(int(tag[1]))
        if tag == "img":
            self.images.append(a)
        if tag == "meta" and a.get("name") == "viewport":
            self.viewport = True
        for name in ("src", "href", "action", "data", "poster", "srcset"):
            if a.get(name) is not None:
                self.urls.append(str(a[name]))
        if tag == "a" and self._first_link:
            self._first_link = False
            self.skip_link = str(a.get("href") or "").startswith("#")
        for name, value in attrs:
            if name == "style" and value and "url(" in value:
                self.urls.append(value)


def check_page(html: str) -> Page:
    """Self-contained and accessible basics: a language, headings in order from h1 without skipping, every image
    with alt text, and no URL that leaves the page's own files (nothing fetched from anywhere)."""
    page = Page()
    page.feed(html)
    assert page.lang and page.lang.startswith("en"), page.lang
    assert page.headings and page.headings[0] == 1, page.headings[:3]
    for before, after in zip(page.headings, page.headings[1:], strict=False):
        assert after <= before + 1, f"heading h{before} followed by h{after}"
    for img in page.images:
        assert (img.get("alt") or "").strip(), f"image without alt text: {str(img.get('src'))[:60]}"
    for url in page.urls:
        assert not re.match(r"^\s*(https?:|//|ftp:|file:)", url, re.I), url
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:)?//", html, re.I)
    assert "@import" not in html and "url(http" not in html
    return page


def structure(pdf: bytes) -> tuple[dict[str, int], list[str], str]:
    """The tagged PDF's structure: how many elements of each type, the figures' alt texts, and the language."""
    root = PdfReader(io.BytesIO(pdf)).trailer["/Root"]
    counts: dict[str, int] = {}
    alts: list[str] = []

    def walk(node: Any) -> None:
        node = node.get_object() if hasattr(node, "get_object") else node
        if isinstance(node, dict):
            kind = node.get("/S")
            if kind:
                counts[str(kind)] = counts.get(str(kind), 0) + 1
                if kind == "/Figure":
                    alts.append(str(node.get("/Alt") or ""))
            if node.get("/K") is not None:
                walk(node["/K"])
        elif isinstance(node, list):
            for item in node:
                walk(item)

    assert root["/MarkInfo"]["/Marked"], "not a tagged PDF"
    walk(root["/StructTreeRoot"])
    return counts, alts, str(root.get("/Lang") or "")
