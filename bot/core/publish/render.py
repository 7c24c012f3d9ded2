"""Render a Pack: the board pack PDF (WeasyPrint), one self-contained HTML file, or the static dashboard.

One template set (Jinja2, autoescaped) serves all three. Nothing links outside the output: CSS is inline and
images are data URIs (PDF, single file) or files beside the pages (dashboard)."""

from __future__ import annotations

import base64
import io
import logging
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from bot.core.publish.model import UNROUNDED_FOOT, UNROUNDED_WARNING, Figure, Pack

TEMPLATES = Path(__file__).parent / "templates"


class _QuietSubsetting(logging.Filter):
    """WeasyPrint warns on every PDF that it subsets fonts with fontTools when the system lacks HarfBuzz-Subset;
    the output is the same, so the warning is noise in the bot's log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "HarfBuzz-Subset" not in record.getMessage()


logging.getLogger("weasyprint").addFilter(_QuietSubsetting())
warnings.filterwarnings("ignore", message=".*HarfBuzz-Subset.*", category=DeprecationWarning)
_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(("html", "j2")),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _css(*names: str) -> str:
    return "\n".join((TEMPLATES / n).read_text(encoding="utf-8") for n in names)


def data_uri(f: Figure) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(f.svg).decode("ascii")


def _file_src(f: Figure) -> str:
    return f"img/{f.name}.svg"


def pack_html(pack: Pack, *, paged: bool = False) -> str:
    """The whole pack as one HTML document: paged (for the PDF: running heads and page numbers) or for a screen."""
    css = _css("base.css", "print.css") if paged else _css("base.css", "screen.css")
    return _env.get_template("pack.html.j2").render(
        pack=pack, css=css, paged=paged, src=data_uri, warning=UNROUNDED_WARNING, foot=UNROUNDED_FOOT
    )


def pack_pdf(pack: Pack) -> bytes:
    """A4 PDF, tagged (headings, figures with their alt text) so screen readers can follow it."""
    from weasyprint import HTML  # imported here: it loads Pango, which the Slack path never needs

    pdf: bytes = HTML(string=pack_html(pack, paged=True)).write_pdf(pdf_tags=True)
    return pdf


def site_pages(pack: Pack, *, src: Callable[[Figure], str] = _file_src) -> dict[str, str]:
    """The dashboard's pages by file name: index.html and one page per measure."""
    css = _css("base.css", "screen.css")
    template = _env.get_template("site.html.j2")
    common = {"pack": pack, "css": css, "src": src, "warning": UNROUNDED_WARNING, "zoom": True}
    pages = {"index.html": template.render(page_title="Overview", current="index", measure=None, **common)}
    for m in pack.measures:
        pages[f"{m.slug}.html"] = template.render(page_title=m.name, current=m.slug, measure=m, **common)
    return pages


def site_files(pack: Pack) -> dict[str, bytes]:
    """Every file of the dashboard by relative path: the pages and the SVG images they show."""
    files = {name: text.encode("utf-8") for name, text in site_pages(pack).items()}
    for f in pack.figures:
        files[_file_src(f)] = f.svg
    return files


def write_site(pack: Pack, out: Path) -> list[Path]:
    written = []
    for name, data in site_files(pack).items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    return written


def site_zip(pack: Pack, *, folder: str = "dashboard") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in site_files(pack).items():
            z.writestr(f"{folder}/{name}", data)
    return buf.getvalue()
