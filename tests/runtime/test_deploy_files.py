"""The deployment files run real `mfi-ar` subcommands, the systemd unit is hardened, and the README section is complete."""

from __future__ import annotations

import configparser
import shlex
from pathlib import Path

import pytest

from bot import cli
from bot.config import Settings

DEPLOY = Path(__file__).parents[2] / "deploy"


def run_target(command: str) -> str:
    """The name of the cli function `command` would run (parsed by the real argument parser)."""
    words = shlex.split(command)
    assert Path(words[0]).name == "mfi-ar", command
    args = cli.build_parser().parse_args(words[1:])
    func = getattr(args, "func", None)
    assert func is not None, f"{command!r} is not a complete mfi-ar subcommand"
    return str(func.__name__)


def procfile() -> dict[str, str]:
    entries: dict[str, str] = {}
    for line in (DEPLOY / "Procfile").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, sep, command = line.partition(":")
        assert sep and name.strip().isidentifier(), line
        assert name.strip() not in entries, f"process type {name} twice"
        entries[name.strip()] = command.strip()
    return entries


def unit() -> configparser.ConfigParser:
    # systemd allows repeated keys; strict=False keeps the last, which is what matters for these checks.
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((DEPLOY / "mfi-ar.service").read_text())
    return parser


def test_procfile_runs_the_server_and_migrates_on_release() -> None:
    entries = procfile()
    assert set(entries) == {"web", "release"}
    assert run_target(entries["web"]) == "cmd_serve"
    assert run_target(entries["release"]) == "cmd_db_upgrade"


def test_systemd_unit_migrates_then_serves_and_restarts_on_failure() -> None:
    service = unit()["Service"]
    assert run_target(service["ExecStartPre"].lstrip("-+!@:")) == "cmd_db_upgrade"
    assert run_target(service["ExecStart"]) == "cmd_serve"
    assert Path(shlex.split(service["ExecStart"])[0]).is_absolute()
    assert service["Restart"] == "on-failure"
    assert service["EnvironmentFile"].startswith("/")
    assert unit()["Install"]["WantedBy"] == "multi-user.target"
    assert "network-online.target" in unit()["Unit"]["After"]


@pytest.mark.parametrize(
    ("option", "wanted"),
    [
        ("NoNewPrivileges", "true"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "true"),
        ("PrivateTmp", "true"),
        ("RestrictSUIDSGID", "true"),
        ("CapabilityBoundingSet", ""),
    ],
)
def test_systemd_unit_is_hardened(option: str, wanted: str) -> None:
    assert unit()["Service"][option] == wanted


def test_systemd_unit_runs_as_a_dedicated_non_root_user_with_a_writable_state_directory() -> None:
    service = unit()["Service"]
    assert service["User"] not in ("", "root", "0")
    assert service.get("DynamicUser", "no") == "no"
    # ProtectSystem=strict makes everything read-only: the SQLite file needs StateDirectory (/var/lib/mfi-ar).
    assert service["StateDirectory"] == "mfi-ar"


def test_readme_section_documents_every_setting_and_the_operations() -> None:
    text = (DEPLOY.parent / "README.md").read_text()
    missing = [name.upper() for name in Settings.model_fields if f"`{name.upper()}`" not in text]
    assert missing == []
    for needed in (
        "mfi-ar db upgrade",
        "pg_dump",
        "sqlite3",
        ".backup",
        "/healthz",
        "503",
        "leader",
        "follower",
        "single",
        "/slack/oauth_redirect",
        "redirect_urls",
        "socket_mode_enabled",
        "request_url",
        "https://<host>/slack/events",
    ):
        assert needed in text, needed
