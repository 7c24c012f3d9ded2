"""What a trust's IT team installs: the licence, the lock file, the version, the container image and compose file."""

from __future__ import annotations

import json
import re
import shlex
import threading
import tomllib
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from bot import cli
from bot.config import Settings
from tools import lock

ROOT = Path(__file__).parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def run_target(words: list[str]) -> str:
    """The cli function an `mfi-ar ...` command line would run, parsed by the real argument parser."""
    assert Path(words[0]).name == "mfi-ar", words
    args = cli.build_parser().parse_args(words[1:])
    func = getattr(args, "func", None)
    assert func is not None, f"{words!r} is not a complete mfi-ar subcommand"
    return str(func.__name__)


# --- licence -----------------------------------------------------------------------------------------------------


def test_licence_is_an_spdx_expression_with_the_mit_text_beside_it() -> None:
    project = PYPROJECT["project"]
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Permission is hereby granted, free of charge" in text
    # PEP 639 metadata (a string license and license-files) needs setuptools 77 or later to build.
    setuptools = next(
        Requirement(r) for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools")
    )
    assert not setuptools.specifier.contains("76.1") and setuptools.specifier.contains("77.0")


# --- lock file -----------------------------------------------------------------------------------------------------


def test_lock_pins_every_declared_dependency_exactly_within_pyproject_ranges() -> None:
    pins = lock.parse((ROOT / "requirements.lock").read_text())
    for requirement in lock.declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {name}=={pins[name]}, outside pyproject's {requirement}"
        )


def test_lock_is_complete_and_matches_the_tested_environment() -> None:
    """Every package the declared dependencies pull in, transitively, is pinned at the version installed here."""
    pins = lock.parse((ROOT / "requirements.lock").read_text())
    needed = lock.closure(lock.declared())
    needed.pop("mfi-ar", None)
    missing = sorted(set(needed) - set(pins))
    assert not missing, f"not pinned in requirements.lock (run `make lock`): {missing}"
    differ = {name: (pins[name], needed[name]) for name in needed if pins[name] != needed[name]}
    assert not differ, f"requirements.lock differs from the installed versions (lock, installed): {differ}"
    assert "mfi-ar" not in pins  # the project itself is never a constraint


def test_lock_parser_refuses_what_is_not_an_exact_pin() -> None:
    assert lock.parse("# comment\nPyYAML==6.0.4  # why\n\n") == {"pyyaml": "6.0.4"}
    for bad in ("pandas>=2", "-e .", "psycopg[binary]==3.3.9", "numpy"):
        with pytest.raises(ValueError, match="not an exact pin"):
            lock.parse(bad)


def test_makefile_installs_from_the_lock_file() -> None:
    installs = [
        line
        for line in (ROOT / "Makefile").read_text().splitlines()
        if "pip install" in line and "-e " in line and "--upgrade pip" not in line
    ]
    constrained = [line for line in installs if "-c requirements.lock" in line]
    assert len(constrained) >= 2, installs  # the runtime and the dev installs
    assert any('".[dev,postgres]"' in line for line in constrained)


# --- version -------------------------------------------------------------------------------------------------------


def test_version_option_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"mfi-ar {installed_version('mfi-ar')}"


def test_changelog_opens_on_the_version_in_pyproject() -> None:
    headings = re.findall(r"^## \[([^\]]+)\]", (ROOT / "CHANGELOG.md").read_text(), flags=re.MULTILINE)
    assert headings and Version(headings[0]) == Version(PYPROJECT["project"]["version"])


@pytest.mark.e2e
def test_healthz_reports_the_version_and_mfi_ar_health_reads_it(
    live, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    url = live.runtime.server.url + "/healthz"
    with urllib.request.urlopen(url, timeout=5) as response:
        report = json.loads(response.read())
    assert report["version"] == installed_version("mfi-ar") and report["status"] == "ok"
    assert cli.main(["health", "--url", url]) == 0
    assert json.loads(capsys.readouterr().out)["version"] == report["version"]


class _Unhealthy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"status": "unhealthy", "database": "unreachable"}'
        self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: Any) -> None:
        pass


def test_mfi_ar_health_fails_on_503_and_on_no_answer(capsys: pytest.CaptureFixture[str]) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Unhealthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert cli.main(["health", "--url", f"http://127.0.0.1:{server.server_port}/healthz"]) == 1
        assert "unhealthy" in capsys.readouterr().err
    finally:
        server.shutdown()
        server.server_close()
    # The port is closed now: nothing answers.
    assert (
        cli.main(["health", "--url", f"http://127.0.0.1:{server.server_port}/healthz", "--timeout", "2"]) == 1
    )
    assert "no health answer" in capsys.readouterr().err


# --- Dockerfile ----------------------------------------------------------------------------------------------------


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, with line continuations joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        keyword, _, arguments = line.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    assert not pending, "a continued line runs off the end of the Dockerfile"
    return instructions


def exec_form(arguments: str) -> list[str]:
    words = json.loads(arguments)
    assert isinstance(words, list) and all(isinstance(word, str) for word in words), arguments
    return words


def docker_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, arguments in dockerfile():
        if keyword == "ENV":
            for pair in shlex.split(arguments):
                key, sep, value = pair.partition("=")
                assert sep, f"ENV {pair!r}: use KEY=value"
                env[key] = value
    return env


def test_dockerfile_uses_slim_python_311_and_installs_from_the_lock() -> None:
    steps = dockerfile()
    assert steps[0] == ("FROM", "python:3.11-slim")
    assert sum(keyword == "FROM" for keyword, _ in steps) == 1
    copied = [
        word for keyword, arguments in steps if keyword == "COPY" for word in shlex.split(arguments)[:-1]
    ]
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
    # Every package setuptools would install is copied in.
    for package in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]:
        assert package.rstrip("*") in copied
    installs = [arguments for keyword, arguments in steps if keyword == "RUN" and "pip install" in arguments]
    assert len(installs) == 1 and "-c requirements.lock" in installs[0] and '".[postgres]"' in installs[0]
    assert "requirements.lock" in copied


def test_dockerfile_runs_as_a_non_root_user_after_installing() -> None:
    steps = dockerfile()
    users = [index for index, (keyword, _) in enumerate(steps) if keyword == "USER"]
    assert users, "no USER: the container would run as root"
    user = steps[users[-1]][1]
    assert user not in ("root", "0") and not user.startswith("0:")
    created = " ".join(arguments for keyword, arguments in steps if keyword == "RUN")
    assert re.search(rf"useradd\b.*\b{re.escape(user)}\b", created)
    last_run = max(index for index, (keyword, _) in enumerate(steps) if keyword == "RUN")
    assert users[-1] > last_run  # nothing after the switch runs as root
    assert "--shell /usr/sbin/nologin" in created


def test_dockerfile_gives_matplotlib_and_the_database_a_directory_the_user_owns() -> None:
    env = docker_env()
    created = " ".join(arguments for keyword, arguments in dockerfile() if keyword == "RUN")
    owned = re.search(r"install -d -o mfi-ar -g mfi-ar -m 0700 ([^&]+)", created)
    assert owned is not None
    directories = owned[1].split()
    assert env["MPLCONFIGDIR"] in directories
    database = Settings(_env_file=None, database_url=env["DATABASE_URL"]).database_url  # type: ignore[call-arg]
    assert str(Path(database.split(":///", 1)[1]).parent) in directories


def test_dockerfile_health_check_and_command_are_real_subcommands() -> None:
    steps = dict(dockerfile())
    health = steps["HEALTHCHECK"]
    options, _, command = health.partition("CMD ")
    assert "--interval=" in options and "--timeout=" in options
    assert run_target(exec_form(command)) == "cmd_health"
    assert run_target(exec_form(steps["CMD"])) == "cmd_serve"
    assert docker_env()["PORT"] in shlex.split(steps["EXPOSE"])
    assert docker_env()["HOST"] == "0.0.0.0"  # inside a container, loopback would be unreachable


# --- compose.yaml --------------------------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(document, dict)
    return document


def interpolated(value: str) -> str:
    """compose's ${VAR}, ${VAR:?message} and ${VAR:-default} with VAR set to a sample value."""
    return re.sub(r"\$\{([A-Z_]+)(?::[?-][^}]*)?\}", lambda match: f"sample-{match[1].lower()}", value)


def test_compose_runs_postgres_then_migrate_then_the_bot() -> None:
    services = compose()["services"]
    assert set(services) == {"db", "migrate", "bot"}
    assert services["db"]["image"].startswith("postgres:")
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    assert run_target(services["migrate"]["command"]) == "cmd_db_upgrade"
    assert services["migrate"]["command"] == ["mfi-ar", "migrate"]
    assert run_target(services["bot"]["command"]) == "cmd_serve"
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["bot"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["migrate"]["restart"] == "no"
    # The bot runs the image migrate built.
    assert services["bot"]["image"] == services["migrate"]["image"] and services["migrate"]["build"] == "."


def test_compose_database_url_matches_the_postgres_service() -> None:
    services = compose()["services"]
    db = services["db"]["environment"]
    assert db["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")  # refuses to start without a password
    urls = {name: services[name]["environment"]["DATABASE_URL"] for name in ("migrate", "bot")}
    assert urls["migrate"] == urls["bot"]
    url = interpolated(urls["bot"])
    assert url == (f"postgresql://{db['POSTGRES_USER']}:sample-postgres_password@db:5432/{db['POSTGRES_DB']}")
    assert Settings(_env_file=None, database_url=url).database_url.startswith("postgresql+psycopg://")  # type: ignore[call-arg]


def test_compose_publishes_the_bot_port_on_loopback_only() -> None:
    bot = compose()["services"]["bot"]
    assert bot["ports"] == [f"127.0.0.1:{docker_env()['PORT']}:{docker_env()['PORT']}"]
    assert "POSTGRES_PASSWORD" in (ROOT / ".env.example").read_text()


def test_readme_documents_the_image_and_compose() -> None:
    readme = (ROOT / "README.md").read_text()
    for needed in (
        "docker compose up",
        "docker build",
        "mfi-ar migrate",
        "mfi-ar health",
        "requirements.lock",
        "make lock",
        "CHANGELOG.md",
        "mfi-ar --version",
        "non-root",
        "Socket Mode",
        "LICENSE",
    ):
        assert needed in readme, needed
