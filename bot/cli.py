"""The `mfi-ar` command: serve, demo, db, import, report, publish and prompts."""

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


def build_parser() -> argparse.ArgumentParser:
    from bot.version import app_version

    parser = argparse.ArgumentParser(
        prog="mfi-ar", description="The Anti-Racism Model for Improvement Slack bot."
    )
    parser.add_argument("--version", action="version", version=f"mfi-ar {app_version()}")
    sub = parser.add_subparsers(dest="command")

    serve = sub.add_parser("serve", help="run the bot (HTTP, or Socket Mode when SLACK_APP_TOKEN is set)")
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="run the offline walkthrough against the built-in Slack stand-in")
    demo.add_argument("--out", default="demo-output", help="where to write the transcript and charts")
    demo.set_defaults(func=cmd_demo)

    sub.add_parser(
        "migrate", help="apply every database migration and exit (same as: db upgrade)"
    ).set_defaults(func=cmd_db_upgrade)
    health = sub.add_parser(
        "health", help="ask a running server's GET /healthz; exit 0 only if it answers healthy"
    )
    health.add_argument("--url", default=None, help="default: http://127.0.0.1:$PORT/healthz")
    health.add_argument(
        "--timeout", type=float, default=5.0, help="seconds to wait for the answer (default 5)"
    )
    health.set_defaults(func=cmd_health)

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
    report.add_argument(
        "file", help="the CSV or XLSX extract (aggregated counts, values, or one row per record)"
    )
    report.add_argument(
        "--direction",
        choices=["higher", "lower", "neither"],
        default="lower",
        help="which way is better for this measure (default: lower)",
    )
    report.add_argument(
        "--reference",
        default="A",
        help="reference group: an NHS code (default A, White British), HL:<group>, BEST or OTHERS",
    )
    report.add_argument(
        "--spc",
        choices=["mdc", "p", "run"],
        default=None,
        help="SPC chart: p-chart (default for counts), mdc XmR (default for values) or run chart",
    )
    report.add_argument(
        "--rebase",
        action="append",
        default=[],
        metavar="[GROUP=]DATE",
        help="start new SPC limits on DATE (YYYY-MM-DD or a period such as 2024/25 Q2), for every "
        "group or one; repeatable",
    )
    report.add_argument(
        "--fix-after",
        type=int,
        default=None,
        metavar="N",
        help="base each segment's SPC limits on its first N points (N >= 12) and judge later points against them",
    )
    report.add_argument(
        "--target",
        type=float,
        default=None,
        help="SPC target line (a percentage for proportions, e.g. 6, or the value's own unit)",
    )
    report.add_argument(
        "--no-screen",
        action="store_true",
        help="keep very large moving ranges when sizing XmR limits (screened out by default)",
    )
    report.add_argument(
        "--from",
        dest="date_from",
        default=None,
        metavar="PERIOD",
        help="leave out periods before this one: a date (YYYY-MM-DD) or a period such as 2024/25 Q1",
    )
    report.add_argument(
        "--to",
        dest="date_to",
        default=None,
        metavar="PERIOD",
        help="leave out periods after this one: a date (YYYY-MM-DD) or a period such as 2024/25 Q4",
    )
    report.add_argument(
        "--period",
        choices=["auto", "day", "week", "month", "quarter", "year"],
        default="auto",
        help="period to analyse: auto (default) keeps the period the data has (records by "
        "month); a longer period groups the data into it, and the report says so",
    )
    report.add_argument(
        "--quarters",
        choices=["financial", "calendar"],
        default="financial",
        help="name quarters and years by the NHS financial year, April to March (default: "
        "2024/25 Q1 is Apr-Jun 2024), or by the calendar year",
    )
    report.add_argument("--json", action="store_true", help="print the analysis as JSON instead of text")
    report.add_argument(
        "--chart", default=None, metavar="OUT.png", help="also write the SPC chart to this PNG file"
    )
    report.add_argument(
        "--pdf", default=None, metavar="OUT.pdf", help="write the board pack for this measure as an A4 PDF"
    )
    report.add_argument(
        "--html", default=None, metavar="OUT.html", help="write the same as one self-contained HTML page"
    )
    report.add_argument(
        "--unrounded",
        action="store_true",
        help="with --pdf or --html: exact counts for local analysis (disclosure control off); every page "
        "then warns that the output must not be published",
    )
    report.set_defaults(func=cmd_report)

    publish = sub.add_parser(
        "publish", help="write a project's equity dashboard: a static site with no external links"
    )
    publish.add_argument("--project", required=True, help="project id or name")
    publish.add_argument("--out", required=True, metavar="DIR", help="the folder to write the site into")
    publish.add_argument(
        "--team", default=None, help="Slack team id, when the database holds several workspaces"
    )
    publish.set_defaults(func=cmd_publish)

    prompts = sub.add_parser("prompts", help="list the reflective-prompt catalogue")
    from bot.core.prompts import STAGE_IDS

    # An unknown stage used to print nothing at all; now argparse names the real ones.
    prompts.add_argument("--stage", default=None, choices=STAGE_IDS)
    prompts.add_argument("--audience", choices=["team", "lead", "partner"], default=None)
    prompts.set_defaults(func=cmd_prompts)
    return parser


def cmd_serve(_args: argparse.Namespace) -> int:
    from bot.runtime import Runtime, configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    settings.require_for_serving()
    runtime = Runtime.build(settings, http=settings.slack_app_token is None)
    # pandas, matplotlib and statsmodels leave a large heap of long-lived objects; moving them out of the
    # collector's view keeps full collections (and the pauses they put on acknowledgements) short: about 170 ms
    # each at 300,000 objects, 25 ms after. Collect first, so no garbage is kept for good.
    gc.collect()
    gc.freeze()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        if runtime.scheduler is not None:
            runtime.scheduler.start()
        if settings.slack_app_token is not None:
            from bot import socket_mode

            # Retries with back-off, a loopback /healthz that reports the socket truthfully (bot/socket_mode.py).
            socket_mode.run(runtime, settings.slack_app_token.get_secret_value(), health_port=settings.port)
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
    from bot.offline.demo import run_demo

    path = run_demo(out_dir=args.out)
    print(f"Demo transcript written to {path}")
    return 0


def cmd_db_upgrade(_args: argparse.Namespace) -> int:
    from bot.runtime import configure_logging
    from storage.db import current_revision, make_engine, upgrade

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)  # says so when another instance is migrating
    engine = make_engine(settings.database_url)
    upgrade(engine)
    print(f"Database schema at revision {current_revision(engine)}")
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    """For a container's HEALTHCHECK (the slim image has no curl): 0 when /healthz answers 200, 1 otherwise."""
    import os
    import urllib.error
    import urllib.request

    url = args.url or f"http://127.0.0.1:{os.environ.get('PORT', '3000')}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as response:
            print(response.read().decode(errors="replace"))
            return 0
    except urllib.error.HTTPError as exc:  # 503: the server answered and said it is unhealthy
        print(exc.read().decode(errors="replace"), file=sys.stderr)
    except (OSError, ValueError) as exc:
        print(f"mfi-ar: no health answer from {url}: {exc}", file=sys.stderr)
    return 1


def cmd_db_current(_args: argparse.Namespace) -> int:
    from storage.db import current_revision, make_engine

    print(current_revision(make_engine(load_settings().database_url)) or "empty (run: mfi-ar db upgrade)")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from bot.services.measures import cli_import

    return cli_import(args, load_settings())


def cmd_report(args: argparse.Namespace) -> int:
    if getattr(args, "pdf", None) or getattr(args, "html", None):
        from bot.services.report_pack import cli_pack

        return cli_pack(args)
    from bot.services.report import cli_report

    return cli_report(args)


def cmd_publish(args: argparse.Namespace) -> int:
    from bot.services.boardpack import cli_publish

    return cli_publish(args, load_settings())


def cmd_prompts(args: argparse.Namespace) -> int:
    from bot.core.prompts import load_catalogue

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
