"""`mfi-ar report FILE --pdf OUT.pdf / --html OUT.html`: the board pack for one measure from a file.

Disclosure control is on unless --unrounded, which turns it off for local analysis and says on every page that
the output must not be published."""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path
from typing import TextIO

from bot.core.equity import analysis as an
from bot.core.equity.disclosure import DisclosurePolicy
from bot.core.publish import render
from bot.core.publish import sections as sec
from bot.core.publish.model import Pack
from bot.services.report import EXIT_BAD_INPUT, ReportError, build_analysis, build_channel_analysis


def file_pack(args: argparse.Namespace, *, today: date) -> Pack:
    unrounded = bool(getattr(args, "unrounded", False))
    policy = DisclosurePolicy()
    if unrounded:
        ca = an.ChannelAnalysis(build_analysis(args, today=today), [], {}, [])
    else:
        ca = build_channel_analysis(args, today=today)
    item = sec.Analysed(1, ca, policy, unrounded=unrounded)
    return Pack(
        title=f"Equity report: {ca.analysis.name}",
        project=f"From {Path(args.file).name}",
        produced=today,
        period=sec.period_words([item]),
        summary=sec.summary_section([item], project_name=ca.analysis.name),
        measures=[sec.measure_section(item)],
        methods=sec.methods_section([item], unrounded=unrounded),
        disclosure_note="" if unrounded else policy.note,
        unrounded=unrounded,
    )


def _target(text: str | None, suffix: str) -> Path | None:
    if not text:
        return None
    path = Path(text)
    if not path.parent.exists():
        raise ReportError(f"cannot write {path}: folder {path.parent} does not exist")
    if path.suffix.lower() != suffix:
        raise ReportError(f"{path.name} should end in {suffix}")
    return path


def write_outputs(args: argparse.Namespace, *, today: date) -> list[Path]:
    """Write the PDF and/or the HTML file the arguments ask for; the paths written."""
    pdf, html = _target(getattr(args, "pdf", None), ".pdf"), _target(getattr(args, "html", None), ".html")
    if pdf is None and html is None:
        return []
    pack = file_pack(args, today=today)
    written = []
    if pdf is not None:
        pdf.write_bytes(render.pack_pdf(pack))
        written.append(pdf)
    if html is not None:
        html.write_text(render.pack_html(pack), encoding="utf-8")
        written.append(html)
    return written


def cli_pack(args: argparse.Namespace, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """`mfi-ar report FILE --pdf/--html`: the one-measure board pack from a file."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    try:
        written = write_outputs(args, today=date.today())
    except ReportError as exc:
        err.write(f"mfi-ar report: {exc}\n")
        return EXIT_BAD_INPUT
    for path in written:
        out.write(f"Written {path.resolve()}\n")
    if getattr(args, "unrounded", False):
        out.write("UNROUNDED: disclosure control is off. Do not publish, post or share these files.\n")
    return 0
