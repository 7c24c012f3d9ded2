"""The installed release of mfi-ar, as `mfi-ar --version` and `GET /healthz` report it."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def app_version() -> str:
    """The version pip installed (the package metadata), or "unknown" when run from a source tree never installed."""
    try:
        return version("mfi-ar")
    except PackageNotFoundError:
        return "unknown"
