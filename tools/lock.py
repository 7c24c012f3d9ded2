"""Write requirements.lock: exact pins of everything `pip install ".[dev,postgres]"` brings in, from this environment.

Run it (``make lock``) after changing dependencies in pyproject.toml and installing them; deployments then install
with ``pip install -c requirements.lock ".[postgres]"`` and get the versions the test suite ran against.
"""

from __future__ import annotations

import re
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
EXTRAS = ("dev", "postgres")


def declared(extras: tuple[str, ...] = EXTRAS) -> list[Requirement]:
    """pyproject.toml's dependencies plus the named extras."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = [Requirement(text) for text in project["dependencies"]]
    for extra in extras:
        found += [Requirement(text) for text in project["optional-dependencies"][extra]]
    return found


def _applies(requirement: Requirement, extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    return any(
        requirement.marker.evaluate({**default_environment(), "extra": extra}) for extra in extras or {""}
    )


def closure(roots: list[Requirement]) -> dict[str, str]:
    """Every distribution the roots need on this interpreter, canonical name -> installed version."""
    pins: dict[str, str] = {}
    queue = [(requirement, set(requirement.extras)) for requirement in roots if _applies(requirement, set())]
    seen: set[tuple[str, frozenset[str]]] = set()
    while queue:
        requirement, extras = queue.pop()
        name = canonicalize_name(requirement.name)
        if (name, frozenset(extras)) in seen:
            continue
        seen.add((name, frozenset(extras)))
        try:
            dist = distribution(requirement.name)
        except PackageNotFoundError:
            raise SystemExit(
                f"{requirement.name} is required but not installed: pip install -e '.[dev,postgres]'"
            ) from None
        pins[name] = dist.version
        for text in dist.requires or []:
            child = Requirement(text)
            if _applies(child, extras):
                queue.append((child, set(child.extras)))
    return pins


def render(pins: dict[str, str]) -> str:
    lines = [
        "# Exact versions for deployments and CI, made by `make lock` (tools/lock.py) from a tested environment.",
        f"# Python {sys.version_info.major}.{sys.version_info.minor} on Linux. Install with:",
        '#   pip install -c requirements.lock ".[postgres]"        (a deployment)',
        '#   pip install -c requirements.lock -e ".[dev,postgres]" (development; what `make` does)',
    ]
    lines += [f"{name}=={version}" for name, version in sorted(pins.items())]
    return "\n".join(lines) + "\n"


def parse(text: str) -> dict[str, str]:
    """The pins in a lock file, canonical name -> version (comments and blank lines ignored)."""
    pins: dict[str, str] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!_-]+)", line)
        if match is None:
            raise ValueError(f"not an exact pin: {line!r}")
        pins[canonicalize_name(match[1])] = match[2]
    return pins


def main() -> int:
    pins = closure(declared())
    pins.pop("mfi-ar", None)
    LOCK.write_text(render(pins))
    print(f"Wrote {len(pins)} pins to {LOCK.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
