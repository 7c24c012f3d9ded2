"""Demo chapter: the lead asks for the board pack and the dashboard; both arrive by DM, and the dashboard is unpacked
next to the transcript as it would be on the intranet."""

from __future__ import annotations

import io
import zipfile
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.offline.demo import DemoContext


def chapter(ctx: DemoContext) -> None:
    ctx.step("Publishing: the lead asks for the board pack and the equity dashboard (/mfi report dashboard)")
    dm = ctx.standin.dm_channel(ctx.lead)
    before = {f.id for f in ctx.standin.files()}
    ctx.driver.slash("/mfi", "report dashboard", user=ctx.lead, channel=ctx.channel)

    def arrived() -> bool:
        return len([f for f in ctx.standin.files() if f.channel == dm and f.id not in before]) == 2

    ctx.standin.wait_for(arrived, timeout=180)
    files = [f for f in ctx.standin.files() if f.channel == dm and f.id not in before]
    pack = next(f for f in files if f.filename.endswith(".pdf"))
    site = next(f for f in files if f.filename.endswith(".zip"))
    (ctx.out_dir / "board-pack.pdf").write_bytes(pack.bytes)
    target = ctx.out_dir / "dashboard"
    with zipfile.ZipFile(io.BytesIO(site.bytes)) as archive:
        for name in archive.namelist():
            inside = PurePosixPath(*PurePosixPath(name).parts[1:])  # drop the archive's top folder
            if not inside.parts or ".." in inside.parts:
                continue
            path = target / inside
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(archive.read(name))
    ctx.step(
        "The board pack ([board-pack.pdf](board-pack.pdf)) and the dashboard, unpacked as it would go on the "
        "intranet ([dashboard/index.html](dashboard/index.html))"
    )
