"""The stand-in's files APIs as Slack documents them: files.info, files.delete (a bot deletes only its own files),
private uploads from a form's file_input, and the driver filling one in."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.offline.standin import StandIn
from bot.offline.standin.driver import Driver, ModalError
from bot.offline.standin.server import BOT_USER_ID, DEFAULT_TOKEN, view_problems

USER = "U0ANALYST1"


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn() as running:
        yield running


def client(standin: StandIn) -> WebClient:
    return WebClient(base_url=standin.api_url, token=DEFAULT_TOKEN)


def test_files_info_gives_the_documented_fields_for_a_private_upload(standin: StandIn) -> None:
    stored = standin.add_user_file("x.csv", b"a,b\n", user=USER, channel=None)
    file = client(standin).files_info(file=stored.id)["file"]
    assert file["id"] == stored.id and file["user"] == USER and file["size"] == 4
    assert file["created"] == file["timestamp"] > 0
    assert file["url_private_download"].endswith(f"/files/{stored.id}")
    assert file["permalink"].startswith("https://") and file["is_public"] is False
    assert file["channels"] == [] and file["groups"] == [] and file["ims"] == []
    # A private upload posts nothing anywhere.
    assert standin.messages() == []


def test_files_delete_lets_a_bot_delete_only_its_own_files(standin: StandIn) -> None:
    web = client(standin)
    theirs = standin.add_user_file("x.csv", b"a,b\n", user=USER, channel=None)
    with pytest.raises(SlackApiError) as refused:
        web.files_delete(file=theirs.id)
    assert refused.value.response["error"] == "cant_delete_file"
    assert web.files_info(file=theirs.id)["ok"]
    ours = standin.add_user_file("chart.png", b"png", user=BOT_USER_ID, channel=None)
    assert web.files_delete(file=ours.id)["ok"]
    for call in (lambda: web.files_info(file=ours.id), lambda: web.files_delete(file=ours.id)):
        with pytest.raises(SlackApiError) as gone:
            call()
        assert gone.value.response["error"] == "file_deleted"
    with pytest.raises(SlackApiError) as missing:
        web.files_delete(file="F404")
    assert missing.value.response["error"] == "file_not_found"


def _form(standin: StandIn) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "upload",
        "title": {"type": "plain_text", "text": "Upload"},
        "submit": {"type": "plain_text", "text": "Go"},
        "blocks": [
            {
                "type": "input",
                "block_id": "file",
                "label": {"type": "plain_text", "text": "File"},
                "element": {"type": "file_input", "action_id": "input", "filetypes": ["csv"], "max_files": 1},
            }
        ],
    }


def test_a_file_input_modal_is_valid_and_the_driver_fills_it_like_the_slack_client(standin: StandIn) -> None:
    view = _form(standin)
    assert view_problems(view, "views.open") == []
    driver = Driver(standin, "http://127.0.0.1:9/slack/events", "secret")
    state = driver.build_state(view, {"file": ("extract.csv", b"a,b\n")}, user=USER)
    entry = state["file"]["input"]
    assert entry["type"] == "file_input" and [f["name"] for f in entry["files"]] == ["extract.csv"]
    uploaded = standin.file(entry["files"][0]["id"])
    assert uploaded is not None and uploaded.user == USER and uploaded.channel is None
    with pytest.raises(ModalError, match="accepts csv"):
        driver.build_state(view, {"file": ("extract.xlsb", b"x")}, user=USER)
    with pytest.raises(ModalError, match="at most 1"):
        driver.build_state(view, {"file": [("a.csv", b"x"), ("b.csv", b"y")]}, user=USER)
    with pytest.raises(ModalError, match="10 MB"):
        driver.build_state(view, {"file": ("big.csv", b"x" * (10 * 1024 * 1024 + 1))}, user=USER)
    with pytest.raises(ModalError, match="required"):
        driver.build_state(view, {}, user=USER)


def test_files_info_needs_the_files_read_scope(standin: StandIn) -> None:
    standin.add_team("T0NOREAD01", "No files:read", "xoxb-noread", scopes="commands,chat:write,files:write")
    stored = standin.add_user_file("x.csv", b"a,b\n", user=USER, channel=None)
    with pytest.raises(SlackApiError) as refused:
        WebClient(base_url=standin.api_url, token="xoxb-noread").files_info(file=stored.id)
    assert (
        refused.value.response["error"] == "missing_scope"
        and refused.value.response["needed"] == "files:read"
    )
