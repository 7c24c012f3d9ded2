"""Downloading a Slack file for an import, within bounds: Slack's file hosts only, the bot token only there,
no redirects off those hosts, and a size limit checked before and during the download."""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bot.core.extracts import ImportRefused

logger = logging.getLogger(__name__)

# Slack serves private files from this host (url_private / url_private_download).
SLACK_FILE_HOSTS = frozenset({"files.slack.com"})
CHUNK = 64 * 1024
TIMEOUT_SECONDS = 60
MAX_REDIRECTS = 3


@dataclass(frozen=True)
class Origin:
    scheme: str
    host: str
    port: int


def _origin(url: str) -> Origin | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if not host or scheme not in ("http", "https"):
        return None
    return Origin(scheme, host, port or (443 if scheme == "https" else 80))


def allowed_origins(api_url: str) -> frozenset[Origin]:
    """Where files may be fetched from: https on Slack's file hosts, plus the configured Web API's own origin
    (the stand-in serves files from there in tests and the demo)."""
    origins = {Origin("https", host, 443) for host in SLACK_FILE_HOSTS}
    api = _origin(api_url)
    if api is not None:
        origins.add(api)
    return frozenset(origins)


def megabytes(size: int) -> str:
    """A size as people read it: "50 MB", "2.5 MB" or, under a megabyte, "40 KB"."""
    if size < 1024 * 1024:
        return f"{max(1, round(size / 1024)):,} KB"
    return f"{size / (1024 * 1024):,.1f} MB".replace(".0 MB", " MB")


def _too_big(name: str, size: int | None, limit: int) -> ImportRefused:
    what = f"{name} is {megabytes(size)}" if size is not None else f"{name} is larger than {megabytes(limit)}"
    fix = (
        f"the most I import is {megabytes(limit)}. Export only the columns needed (date, ethnicity and outcome), "
        "or aggregated counts by period and ethnic group, which are far smaller, and upload again."
    )
    return ImportRefused(
        f"{what}; {fix}", public=f"{name} is larger than the {megabytes(limit)} I can import; {fix}"
    )


class _NoOffHostRedirects(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to an allowed origin. The bot token is sent as an unredirected header, so urllib
    never forwards it on any redirect."""

    def __init__(self, allowed: frozenset[Origin]) -> None:
        self.allowed = allowed

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        if _origin(newurl) not in self.allowed:
            raise ImportRefused(
                "Slack sent the file's download somewhere other than Slack's file servers, so I did not follow it. "
                "Nothing was saved; upload the file again, and tell your Slack admin if it keeps happening."
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def download(
    file: Mapping[str, Any], *, token: str | None, api_url: str, max_bytes: int, opener: Any = None
) -> bytes:
    """The bytes of a Slack file (a files.info `file` object), or ImportRefused saying what the limit is and what
    to do. The URL must be on an allowed origin (https on files.slack.com, or the configured API origin)."""
    name = str(file.get("name") or "The file")
    url = str(file.get("url_private_download") or file.get("url_private") or "")
    allowed = allowed_origins(api_url)
    origin = _origin(url)
    if origin is None or origin not in allowed:
        logger.warning(
            "Refused to download a file from %s", (origin.host if origin else url.split(":", 1)[0])[:80]
        )
        raise ImportRefused(
            f"{name} is not stored on Slack's file servers, so I did not download it. Nothing was saved; "
            "upload the file again with `/measure import`."
        )
    declared = file.get("size")
    declared_size = (
        int(declared) if isinstance(declared, int | float | str) and str(declared).isdigit() else None
    )
    if declared_size is not None and declared_size > max_bytes:
        raise _too_big(name, declared_size, max_bytes)
    limit = min(max_bytes, declared_size) if declared_size is not None else max_bytes
    request = urllib.request.Request(url)
    if token:
        request.add_unredirected_header("Authorization", f"Bearer {token}")
    opener = opener or urllib.request.build_opener(_NoOffHostRedirects(allowed))
    try:
        with opener.open(request, timeout=TIMEOUT_SECONDS) as reply:
            length = reply.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > limit:
                raise _size_problem(name, int(length), declared_size, max_bytes)
            chunks: list[bytes] = []
            received = 0
            while chunk := reply.read(CHUNK):
                received += len(chunk)
                if received > limit:
                    raise _size_problem(name, None, declared_size, max_bytes)
                chunks.append(chunk)
    except urllib.error.HTTPError as error:
        logger.warning("Downloading a file failed with HTTP %s", error.code)
        raise ImportRefused(
            f"Slack would not give me {name} (HTTP {error.code}). Nothing was saved; upload it again in a moment.",
        ) from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        logger.warning("Downloading a file failed: %s", type(error).__name__)
        raise ImportRefused(
            f"I could not download {name} from Slack just now. Nothing was saved; upload it again in a moment.",
        ) from None
    return b"".join(chunks)


def _size_problem(name: str, size: int | None, declared: int | None, max_bytes: int) -> ImportRefused:
    if declared is not None and declared <= max_bytes:
        # More bytes than Slack said the file holds: something is wrong, so nothing is read.
        return ImportRefused(
            f"{name} turned out larger than the {megabytes(declared)} Slack reported, so I stopped the download. "
            "Nothing was saved; upload the file again."
        )
    return _too_big(name, size, max_bytes)
