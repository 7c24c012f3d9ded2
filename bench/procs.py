"""Processes for the benchmarks: a stand-in and a bare ack-only Bolt app, each in its own interpreter."""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any


class PostWatch:
    """The stand-in's successful chat.postMessage calls, read incrementally: a benchmark polls this while the run
    it measures is going on, and copying and scanning the whole call log each time held the stand-in's lock and the
    interpreter away from the requests it serves (a cost the harness floor never paid)."""

    def __init__(self, standin: Any) -> None:
        self.standin = standin
        self.by_channel: Counter[str] = Counter()
        self._next = 0

    def posted(self) -> int:
        """How many posts so far (catching up on the new calls first)."""
        new, self._next = self.standin.calls_since(self._next, "chat.postMessage")
        self.by_channel.update(str(call.args.get("channel")) for call in new if call.ok)
        return self.by_channel.total()


def standin() -> None:
    from bot.offline.standin import StandIn

    server = StandIn(strict=False).start()
    print(server.url, flush=True)
    threading.Event().wait()


def bare_bolt(port: int, api_url: str, secret: str) -> None:
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.server import HttpServer, WsgiApp
    from storage.db import make_engine

    app = App(signing_secret=secret, client=WebClient(token="xoxb-standin", base_url=api_url))

    @app.command("/mfi")
    def only_ack(ack: Callable[[], None]) -> None:
        ack()

    server = HttpServer(WsgiApp(app, make_engine("sqlite://")), host="127.0.0.1", port=port)
    print(server.url, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    if sys.argv[1] == "standin":
        standin()
    else:
        bare_bolt(int(sys.argv[2]), sys.argv[3], sys.argv[4])
