"""The `mfi-ar` command: serve, demo, db, import, report and prompts."""

from __future__ import annotations

import argparse
import gc
import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from bot.config import ConfigError, load_settings

logger = logging.getLogger("mfi-ar")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"mfi-ar: {exc}", file=sys.stderr)
        return 2


REPORT_HELP = {
    "file": "the extract: aggregated counts by period and ethnic group, or one row per record (CSV or Excel)",
    "direction": "which way is better for this measure: lower (e.g. PPH), higher, or neither (default lower)",
    "reference": "the reference group: an NHS code (A), a high-level group (HL:White), BEST or OTHERS (default A)",
    "spc": "the SPC chart: p (p-chart), mdc (XmR, Making Data Count) or run (run chart); default by measure kind",
    "rebase": "start a new SPC segment on DATE, for every group or one (GROUP=DATE); repeat for more",
    "fix_after": "freeze the SPC limits after this many points",
    "target": "a target line for the SPC chart (9 or 0.09 for 9%%)",
    "no_screen": "do not screen out extreme points when setting the SPC limits",
    "date_from": "leave out periods before this date (YYYY-MM-DD)",
    "date_to": "leave out periods after this date (YYYY-MM-DD)",
    "period": "the length of one period in the data",
    "json": "write the full analysis as JSON instead of text",
    "chart": "also write the groups-over-time chart to this PNG file",
}


def _add_help(parser: argparse.ArgumentParser, texts: dict[str, str]) -> None:
    """Give every argument a help line (kept apart so each option line stays as it is)."""
    for action in parser._actions:
        if not action.help and action.dest in texts:
            action.help = texts[action.dest]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mfi-ar", description="The Anti-Racism Model for Improvement Slack bot.")
    sub = parser.add_subparsers(dest="command")

    serve = sub.add_parser("serve", help="run the bot (HTTP, or Socket Mode when SLACK_APP_TOKEN is set)")
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="run the offline walkthrough against the built-in Slack stand-in")
    demo.add_argument("--out", default="demo-output", help="where to write the transcript and charts")
    demo.set_defaults(func=cmd_demo)

    db = sub.add_parser("db", help="database migrations")
    db_sub = db.add_subparsers(dest="db_command")
    db_sub.add_parser("upgrade", help="apply every migration").set_defaults(func=cmd_db_upgrade)
    db_sub.add_parser("current", help="show the schema revision").set_defaults(func=cmd_db_current)

    imp = sub.add_parser("import", help="import a CSV/XLSX extract into a measure (aggregated on the way in)")
    imp.add_argument("file")
    imp.add_argument("--project", required=True, help="project id or name")
    imp.add_argument("--measure", required=True, help="measure id or name")
    imp.add_argument("--team", default=None, help="Slack team id, when the database holds several workspaces")
    imp.set_defaults(func=cmd_import)

    report = sub.add_parser("report", help="run the equity analysis on a file (local output, not rounded)")
    report.add_argument("file")
    report.add_argument("--direction", choices=["higher", "lower", "neither"], default="lower")
    report.add_argument("--reference", default="A")
    report.add_argument("--spc", choices=["mdc", "p", "run"], default=None)
    report.add_argument("--rebase", action="append", default=[], metavar="[GROUP=]DATE")
    report.add_argument("--fix-after", type=int, default=None)
    report.add_argument("--target", type=float, default=None)
    report.add_argument("--no-screen", action="store_true")
    report.add_argument("--from", dest="date_from", default=None)
    report.add_argument("--to", dest="date_to", default=None)
    report.add_argument("--period", choices=["week", "month", "quarter"], default="month")
    report.add_argument("--json", action="store_true")
    report.add_argument("--chart", default=None, metavar="OUT.png")
    _add_help(report, REPORT_HELP)
    report.set_defaults(func=cmd_report)

    prompts = sub.add_parser("prompts", help="list the reflective-prompt catalogue")
    from bot.prompts import STAGE_IDS

    # An unknown stage used to print nothing at all; now argparse names the real ones.
    prompts.add_argument("--stage", default=None, choices=STAGE_IDS)
    prompts.add_argument("--audience", choices=["team", "lead", "partner"], default=None)
    prompts.set_defaults(func=cmd_prompts)
    return parser


def cmd_serve(_args: argparse.Namespace) -> int:
    from bot.runtime import Runtime, configure_logging

    settings = load_settings()
    configure_logging(settings.log_level)
    settings.require_for_serving()
    runtime = Runtime.build(settings, http=settings.slack_app_token is None)
    # pandas, matplotlib and statsmodels leave a large heap of long-lived objects; moving them out of the
    # collector's view keeps full collections (and the pauses they put on acknowledgements) short.
    gc.freeze()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        if runtime.scheduler is not None:
            runtime.scheduler.start()
        if settings.slack_app_token is not None:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            logger.info("Connecting to Slack in Socket Mode")
            SocketModeHandler(runtime.app, settings.slack_app_token.get_secret_value()).start()  # type: ignore[no-untyped-call]
        else:
            assert runtime.server is not None
            logger.info("Listening on %s (POST /slack/events, GET /healthz)", runtime.server.url)
            runtime.server.serve_forever()
    except KeyboardInterrupt:
        logger.info("Shutting down")
    finally:
        runtime.stop()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from bot.demo import run_demo

    path = run_demo(out_dir=args.out)
    print(f"Demo transcript written to {path}")
    return 0


def cmd_db_upgrade(_args: argparse.Namespace) -> int:
    from storage.db import current_revision, make_engine, upgrade

    engine = make_engine(load_settings().database_url)
    upgrade(engine)
    print(f"Database schema at revision {current_revision(engine)}")
    return 0


def cmd_db_current(_args: argparse.Namespace) -> int:
    from storage.db import current_revision, make_engine

    print(current_revision(make_engine(load_settings().database_url)) or "empty (run: mfi-ar db upgrade)")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from bot.importing import cli_import

    return cli_import(args, load_settings())


def cmd_report(args: argparse.Namespace) -> int:
    from bot.equity.report import cli_report

    return cli_report(args)


def cmd_prompts(args: argparse.Namespace) -> int:
    from bot.prompts import load_catalogue

    catalogue = load_catalogue()
    for stage in catalogue.stages:
        if args.stage and stage.id != args.stage:
            continue
        print(f"\n== {stage.title} ({stage.id}; {stage.question})\n   {stage.why}")
        for prompt in catalogue.prompts:
            if prompt.stage != stage.id or (args.audience and args.audience not in prompt.audience):
                continue
            print(f"  [{prompt.id}] ({', '.join(prompt.audience)}) {prompt.text}")
            if prompt.plain and (args.audience in (None, "partner")):
                print(f"      plain: {prompt.plain}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
