"""End-to-end checks of the Slack stand-in and driver against a tiny real Bolt app over real HTTP."""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from slack_bolt import Ack, App, BoltContext, BoltRequest, Respond
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import builtin_handlers
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.offline.standin import Driver, DriverError, ModalError, StandIn, render_transcript

SECRET = "standin-test-secret"
LEAD = "U0QILEAD01"
MIDWIFE = "U0MIDWIFE1"
CHANNEL = "C0MATERNITY"
PAYLOAD_DIR = Path(__file__).parents[1] / "payloads"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64

PLAN_MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "plan",
    "title": {"type": "plain_text", "text": "Plan a PDSA cycle"},
    "submit": {"type": "plain_text", "text": "Save"},
    "close": {"type": "plain_text", "text": "Cancel"},
    "private_metadata": json.dumps({"channel_id": CHANNEL}),
    "blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "Your change idea"}},
        {
            "type": "input",
            "block_id": "idea",
            "label": {"type": "plain_text", "text": "Change idea"},
            "element": {"type": "plain_text_input", "action_id": "value", "multiline": True},
        },
        {
            "type": "input",
            "block_id": "prediction",
            "label": {"type": "plain_text", "text": "Predicted value (%)"},
            "element": {
                "type": "number_input",
                "action_id": "value",
                "is_decimal_allowed": True,
                "min_value": "0",
                "max_value": "100",
            },
        },
        {
            "type": "input",
            "block_id": "measure",
            "label": {"type": "plain_text", "text": "Measure"},
            "element": {
                "type": "static_select",
                "action_id": "value",
                "options": [
                    {"text": {"type": "plain_text", "text": "PPH over 1.5 litres (%)"}, "value": "pph_1500"},
                    {
                        "text": {"type": "plain_text", "text": "Interpreter offered (%)"},
                        "value": "interpreter",
                    },
                ],
            },
        },
        {
            "type": "input",
            "block_id": "groups",
            "optional": True,
            "label": {"type": "plain_text", "text": "Groups expected to benefit"},
            "element": {
                "type": "multi_static_select",
                "action_id": "value",
                "options": [
                    {"text": {"type": "plain_text", "text": "Asian or Asian British"}, "value": "asian"},
                    {
                        "text": {"type": "plain_text", "text": "Black, Black British, Caribbean or African"},
                        "value": "black",
                    },
                    {"text": {"type": "plain_text", "text": "White"}, "value": "white"},
                ],
            },
        },
        {
            "type": "input",
            "block_id": "study_date",
            "label": {"type": "plain_text", "text": "Study the results on"},
            "element": {"type": "datepicker", "action_id": "value"},
        },
        {
            "type": "input",
            "block_id": "huddle",
            "optional": True,
            "label": {"type": "plain_text", "text": "Huddle time"},
            "element": {"type": "timepicker", "action_id": "value", "initial_time": "08:30"},
        },
        {
            "type": "input",
            "block_id": "owner",
            "label": {"type": "plain_text", "text": "Owner"},
            "element": {"type": "users_select", "action_id": "value"},
        },
        {
            "type": "input",
            "block_id": "share_in",
            "optional": True,
            "label": {"type": "plain_text", "text": "Share in"},
            "element": {"type": "conversations_select", "action_id": "value"},
        },
        {
            "type": "input",
            "block_id": "voice",
            "optional": True,
            "label": {"type": "plain_text", "text": "Whose voice is missing?"},
            "element": {
                "type": "radio_buttons",
                "action_id": "value",
                "options": [
                    {"text": {"type": "plain_text", "text": "Patients"}, "value": "patients"},
                    {"text": {"type": "plain_text", "text": "Interpreters"}, "value": "interpreters"},
                ],
            },
        },
        {
            "type": "input",
            "block_id": "consent",
            "optional": True,
            "label": {"type": "plain_text", "text": "Checks"},
            "element": {
                "type": "checkboxes",
                "action_id": "value",
                "options": [{"text": {"type": "plain_text", "text": "Data governance OK"}, "value": "dg"}],
                "initial_options": [
                    {"text": {"type": "plain_text", "text": "Data governance OK"}, "value": "dg"}
                ],
            },
        },
    ],
}


STEP_MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "step",
    "title": {"type": "plain_text", "text": "Next step"},
    "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": "Check the *data* first."}},
        {
            "type": "actions",
            "elements": [
                {
                    "type": "button",
                    "action_id": "refresh",
                    "value": "r1",
                    "text": {"type": "plain_text", "text": "Refresh"},
                }
            ],
        },
    ],
}


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class TinyApp:
    """A small Bolt app that exercises every stand-in surface, plus what it saw."""

    def __init__(self, standin: StandIn) -> None:
        self.submissions: list[dict[str, Any]] = []
        self.retry_headers: list[tuple[str | None, str | None]] = []
        self.clicks: list[str] = []
        self.shared_bytes: list[bytes] = []
        client = WebClient(
            base_url=standin.api_url,
            token="xoxb-standin",
            retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)],
        )
        self.client = client
        app = App(client=client, signing_secret=SECRET)
        app.command("/mfi-ar")(self.handle_command)
        app.view("plan")(self.handle_plan_submission)
        app.action("record_result")(self.handle_record_result)
        app.action("refresh")(self.handle_refresh)
        self.refreshes: list[dict[str, Any]] = []
        app.event("app_home_opened")(self.handle_home_opened)
        app.event("app_mention")(self.handle_mention)
        app.event("file_shared")(self.handle_file_shared)
        self.app = app

    def handle_command(self, ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
        text = body.get("text", "")
        if text == "plan":
            ack()
            client.views_open(trigger_id=body["trigger_id"], view=PLAN_MODAL)
        elif text == "chart":
            ack("Drawing your chart…")
            client.files_upload_v2(
                channel=body["channel_id"],
                content=PNG,
                filename="run-chart.png",
                title="PPH run chart",
                alt_txt="Run chart: PPH over 1.5 litres fell from 12% to 8% after the change.",
                initial_comment="Here is the run chart.",
            )
        elif text == "respond":
            ack()
            respond(text="Saved for the whole team.", response_type="in_channel")
            respond(text="Only you can see this.")
        elif text == "dm":
            ack()
            client.chat_postMessage(channel=body["user_id"], text="A private reminder.")
        else:
            ack(f"Unknown subcommand {text!r}")

    def handle_plan_submission(
        self, ack: Ack, view: dict[str, Any], body: dict[str, Any], client: WebClient
    ) -> None:
        values = view["state"]["values"]
        date = values["study_date"]["value"]["selected_date"]
        if date < "2026-01-01":
            ack(response_action="errors", errors={"study_date": "The study date must be in 2026 or later."})
            return
        if values["idea"]["value"]["value"] == "next step":
            ack(response_action="push", view=STEP_MODAL)
            return
        ack()
        self.submissions.append(values)
        channel = json.loads(view["private_metadata"])["channel_id"]
        idea = values["idea"]["value"]["value"]
        client.chat_postMessage(
            channel=channel,
            text=f"New PDSA cycle: {idea}",
            blocks=[
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": f"*New PDSA cycle* by <@{body['user']['id']}>"},
                    "fields": [{"type": "mrkdwn", "text": "*Idea*"}, {"type": "mrkdwn", "text": idea}],
                },
                {
                    "type": "actions",
                    "block_id": "cycle_actions",
                    "elements": [
                        {
                            "type": "button",
                            "action_id": "record_result",
                            "value": "cycle:1",
                            "text": {"type": "plain_text", "text": "Record result"},
                        }
                    ],
                },
            ],
        )

    def handle_record_result(self, ack: Ack, action: dict[str, Any], respond: Respond) -> None:
        ack()
        self.clicks.append(action["value"])
        respond(text="Result recorded.", replace_original=True)

    def handle_refresh(self, ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        self.refreshes.append(body)
        view = body["view"]
        client.views_update(
            view_id=view["id"],
            hash=view["hash"],
            view={**STEP_MODAL, "title": {"type": "plain_text", "text": "Refreshed"}},
        )

    def handle_home_opened(self, event: dict[str, Any], client: WebClient) -> None:
        client.views_publish(
            user_id=event["user"],
            view={
                "type": "home",
                "blocks": [
                    {"type": "header", "text": {"type": "plain_text", "text": "Your PDSA cycles"}},
                    {"type": "context", "elements": [{"type": "mrkdwn", "text": "Updated just now"}]},
                ],
            },
        )

    def handle_mention(self, request: BoltRequest, say: Any) -> None:
        self.retry_headers.append(
            (
                request.headers.get("x-slack-retry-num", [None])[0],
                request.headers.get("x-slack-retry-reason", [None])[0],
            )
        )

    def handle_file_shared(self, event: dict[str, Any], client: WebClient, context: BoltContext) -> None:
        info = client.files_info(file=event["file_id"])
        request = urllib.request.Request(
            info["file"]["url_private_download"], headers={"Authorization": f"Bearer {context.bot_token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as reply:
            self.shared_bytes.append(reply.read())


@pytest.fixture
def standin() -> Iterator[StandIn]:
    with StandIn() as server:
        yield server


@pytest.fixture
def tiny(standin: StandIn, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TinyApp, Driver]]:
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_CLIENT_ID", "SLACK_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    app = TinyApp(standin)
    server = make_server(
        "127.0.0.1",
        0,
        SlackRequestHandler(app.app),
        server_class=_ThreadingWSGIServer,
        handler_class=_QuietHandler,
    )
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    driver = Driver(standin, f"http://127.0.0.1:{server.server_port}/slack/events", SECRET)
    try:
        yield app, driver
    finally:
        server.shutdown()
        server.server_close()


def _raw_api(
    standin: StandIn, method: str, body: dict[str, Any], token: str = "xoxb-standin"
) -> tuple[int, Any, Any]:
    request = urllib.request.Request(
        standin.api_url + method,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status, json.loads(reply.read()), reply.headers
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), err.headers


def test_payload_templates_are_bundled_and_identical() -> None:
    bundled = Path(__file__).parents[2] / "bot" / "offline" / "standin" / "payloads"
    names = sorted(p.name for p in PAYLOAD_DIR.glob("*.json"))
    assert names and names == sorted(p.name for p in bundled.glob("*.json"))
    for name in names:
        assert json.loads((PAYLOAD_DIR / name).read_text()) == json.loads((bundled / name).read_text())


def test_slash_opens_modal_and_submit_round_trips_typed_state(
    standin: StandIn, tiny: tuple[TinyApp, Driver]
) -> None:
    app, driver = tiny
    result = driver.slash("/mfi-ar", "plan", user=LEAD, channel=CHANNEL)
    assert result.response.status == 200
    view = result.wait_view()
    assert view["id"].startswith("V") and view["hash"]
    assert standin.view_stack(LEAD) == [view["id"]]

    response = driver.submit_view(
        view["id"],
        {
            "Change idea": "Weigh every swab at the bedside",
            "prediction": 80,
            "measure": "PPH over 1.5 LITRES (%)",  # visible text, case-insensitive
            "Groups expected to benefit": ["asian", "Black, Black British, Caribbean or African"],
            "study_date": "2026-10-15",
            "owner": MIDWIFE,
            "share in": CHANNEL,
        },
        user=LEAD,
    )
    assert response.status == 200 and response.body == ""
    values = standin.wait_for(lambda: app.submissions)[0]
    assert values["idea"]["value"] == {"type": "plain_text_input", "value": "Weigh every swab at the bedside"}
    assert values["prediction"]["value"] == {"type": "number_input", "value": "80"}
    assert values["measure"]["value"]["selected_option"]["value"] == "pph_1500"
    assert [o["value"] for o in values["groups"]["value"]["selected_options"]] == ["asian", "black"]
    assert values["study_date"]["value"] == {"type": "datepicker", "selected_date": "2026-10-15"}
    assert values["huddle"]["value"] == {"type": "timepicker", "selected_time": "08:30"}  # initial value kept
    assert values["owner"]["value"] == {"type": "users_select", "selected_user": MIDWIFE}
    assert values["share_in"]["value"]["selected_conversation"] == CHANNEL
    assert values["voice"]["value"] == {"type": "radio_buttons", "selected_option": None}
    assert [o["value"] for o in values["consent"]["value"]["selected_options"]] == ["dg"]
    assert standin.view_stack(LEAD) == []  # an empty ack closes the modal

    posted = standin.wait_for(lambda: standin.last_message(CHANNEL))
    assert posted.text.startswith("New PDSA cycle") and posted.user == "U0MFIBOT"
    assert standin.violations == []


def test_inline_errors_keep_the_view_open(standin: StandIn, tiny: tuple[TinyApp, Driver]) -> None:
    app, driver = tiny
    view = driver.slash("/mfi-ar", "plan", user=LEAD, channel=CHANNEL).wait_view()
    filled = {
        "idea": "Huddle",
        "prediction": "12.5",
        "measure": "interpreter",
        "study_date": "2025-03-01",
        "owner": LEAD,
    }
    response = driver.submit_view(view["id"], filled, user=LEAD)
    assert response.json == {
        "response_action": "errors",
        "errors": {"study_date": "The study date must be in 2026 or later."},
    }
    assert standin.is_open(view["id"])
    assert standin.view(view["id"])["state"]["values"]["study_date"]["value"]["selected_date"] == "2025-03-01"

    response = driver.submit_view(view["id"], {**filled, "study_date": "2026-04-01"}, user=LEAD)
    assert response.body == ""
    assert not standin.is_open(view["id"])
    assert len(standin.wait_for(lambda: app.submissions)) == 1


def test_driver_refuses_what_the_slack_client_would(standin: StandIn, tiny: tuple[TinyApp, Driver]) -> None:
    _, driver = tiny
    view = driver.slash("/mfi-ar", "plan", user=LEAD, channel=CHANNEL).wait_view()
    base = {
        "idea": "x",
        "prediction": "5",
        "measure": "interpreter",
        "study_date": "2026-02-02",
        "owner": LEAD,
    }
    with pytest.raises(ModalError, match="Change idea.*required"):
        driver.submit_view(view["id"], {**base, "idea": ""}, user=LEAD)
    with pytest.raises(ModalError, match="no field 'colour'"):
        driver.submit_view(view["id"], {**base, "colour": "red"}, user=LEAD)
    with pytest.raises(ModalError, match="no option 'sepsis'"):
        driver.submit_view(view["id"], {**base, "measure": "sepsis"}, user=LEAD)
    with pytest.raises(ModalError, match="refuses '150'"):
        driver.submit_view(view["id"], {**base, "prediction": 150}, user=LEAD)
    with pytest.raises(ModalError, match="not open"):
        driver.submit_view(view["id"], base, user=MIDWIFE)


def test_wrong_signature_and_stale_timestamp_get_401(standin: StandIn, tiny: tuple[TinyApp, Driver]) -> None:
    _, driver = tiny
    assert (
        driver.slash("/mfi-ar", "plan", user=LEAD, channel=CHANNEL, secret="not-the-secret").response.status
        == 401
    )
    assert driver.slash("/mfi-ar", "plan", user=LEAD, channel=CHANNEL, stale=True).response.status == 401
    assert driver.send_raw(b"{}", sign=False).status == 401
    assert standin.calls("views.open") == []


def test_files_upload_v2_stores_bytes_and_alt_text(standin: StandIn, tiny: tuple[TinyApp, Driver]) -> None:
    _, driver = tiny
    result = driver.slash("/mfi-ar", "chart", user=LEAD, channel=CHANNEL)
    assert result.response.body == "Drawing your chart…"
    stored = standin.wait_for(lambda: standin.files())[0]
    assert stored.bytes == PNG
    assert stored.filename == "run-chart.png" and stored.title == "PPH run chart"
    assert stored.alt_txt is not None and stored.alt_txt.startswith("Run chart")
    assert stored.channel == CHANNEL
    assert [c.method for c in standin.calls() if c.method.startswith("files.")] == [
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]
    share = standin.last_message(CHANNEL)
    assert share is not None and share.files == [stored.id] and share.text == "Here is the run chart."
    assert standin.ephemerals(LEAD)[0].text == "Drawing your chart…"  # the ack reply, as Slack shows it


def test_message_and_view_limits_fail_and_are_recorded(standin: StandIn) -> None:
    client = WebClient(base_url=standin.api_url, token="xoxb-standin")
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x"}}
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel=CHANNEL, text="t", blocks=[section] * 51)
    assert err.value.response["error"] == "invalid_blocks"
    with pytest.raises(SlackApiError):
        client.chat_postMessage(
            channel=CHANNEL, text="t", blocks=[{"type": "image", "image_url": "http://x/a.png"}]
        )
    with pytest.raises(SlackApiError):
        client.chat_postMessage(
            channel=CHANNEL,
            text="t",
            blocks=[
                {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}},
                {
                    "type": "actions",
                    "elements": [
                        {"type": "button", "action_id": "b", "text": {"type": "plain_text", "text": "b" * 76}}
                    ],
                },
            ],
        )
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C0OTHERTEAM", text="hello")
    assert err.value.response["error"] == "not_in_channel"

    trigger = standin.new_trigger_id(user=LEAD)
    long_title = {**PLAN_MODAL, "title": {"type": "plain_text", "text": "A title that is far too long"}}
    with pytest.raises(SlackApiError) as err:
        client.views_open(trigger_id=trigger, view=long_title)
    assert err.value.response["error"] == "invalid_arguments"
    no_submit = {k: v for k, v in PLAN_MODAL.items() if k != "submit"}
    with pytest.raises(SlackApiError):
        client.views_open(trigger_id=trigger, view=no_submit)
    client.views_open(trigger_id=trigger, view=PLAN_MODAL)
    with pytest.raises(SlackApiError) as err:
        client.views_open(trigger_id=trigger, view=PLAN_MODAL)
    assert err.value.response["error"] == "exchanged_trigger_id"
    with pytest.raises(SlackApiError) as err:
        client.views_open(trigger_id="123.456.abc", view=PLAN_MODAL)
    assert err.value.response["error"] == "invalid_trigger_id"

    with pytest.raises(SlackApiError) as err:
        client.files_upload_v2(channel=CHANNEL, content=PNG, filename="a.png", alt_txt="a" * 1001)
    assert err.value.response["error"] == "alt_txt_too_large"
    with pytest.raises(SlackApiError) as err:
        client.files_upload_v2(channel=LEAD, content=PNG, filename="a.png", alt_txt="chart")
    assert err.value.response["error"] == "channel_not_found"
    with pytest.raises(SlackApiError) as err:
        client.files_upload_v2(channel="C0OTHERTEAM", content=PNG, filename="a.png", alt_txt="chart")
    assert err.value.response["error"] == "not_in_channel"

    joined = "\n".join(standin.violations)
    for expected in (
        "51 blocks",
        "no alt_text",
        "header is 151",
        "button text is 76",
        "not a member",
        "modal title",
        "needs a submit",
        "already used",
        "unknown trigger_id",
        "alt_txt is 1001",
        "not a conversation id",
    ):
        assert expected in joined
    assert standin.files() == []


def test_expired_trigger_uses_the_clock(standin: StandIn) -> None:
    now = [1_800_000_000.0]
    with StandIn(clock=lambda: now[0]) as timed:
        client = WebClient(base_url=timed.api_url, token="xoxb-standin")
        trigger = timed.new_trigger_id(user=LEAD)
        now[0] += 3.5
        with pytest.raises(SlackApiError) as err:
            client.views_open(trigger_id=trigger, view=PLAN_MODAL)
        assert err.value.response["error"] == "expired_trigger_id"


def test_fallback_text_only_recorded_and_lenient_mode_does_not_fail() -> None:
    with StandIn(strict=False) as lenient:
        status, body, _ = _raw_api(
            lenient,
            "chat.postMessage",
            {"channel": CHANNEL, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}]},
        )
        assert status == 200 and body["ok"] is True
        status, body, _ = _raw_api(
            lenient,
            "chat.postMessage",
            {"channel": CHANNEL, "text": "x", "blocks": [{"type": "divider"}] * 51},
        )
        assert body["ok"] is True
        assert any("fallback" in v for v in lenient.violations)
        assert any("51 blocks" in v for v in lenient.violations)


def test_calls_since_reads_only_what_is_new(standin: StandIn) -> None:
    client = WebClient(base_url=standin.api_url, token="xoxb-standin")
    client.chat_postMessage(channel=CHANNEL, text="one")
    client.users_info(user=LEAD)
    first, upto = standin.calls_since(0, "chat.postMessage")
    assert [c.args["text"] for c in first] == ["one"]
    assert upto == len(standin.calls())  # counts every method, so the next look skips the users.info too

    assert standin.calls_since(upto, "chat.postMessage") == ([], upto)
    client.chat_postMessage(channel=CHANNEL, text="two")
    new, after = standin.calls_since(upto)
    assert [(c.method, c.args.get("text")) for c in new] == [("chat.postMessage", "two")]
    assert after == upto + 1


def test_a_request_cut_off_part_way_is_not_acted_on(standin: StandIn) -> None:
    body = urllib.parse.urlencode({"channel": CHANNEL, "text": "half a post"}).encode()
    host, port = urllib.parse.urlsplit(standin.api_url).netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /api/chat.postMessage HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer xoxb-standin\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[: len(body) // 2]
        )
        sock.shutdown(socket.SHUT_WR)  # the sender dies here
        assert sock.recv(1024) == b""  # no answer: the connection is closed
    assert standin.calls("chat.postMessage") == [] and standin.messages(CHANNEL) == []
    # The whole request is acted on as before.
    WebClient(base_url=standin.api_url, token="xoxb-standin").chat_postMessage(channel=CHANNEL, text="whole")
    assert [m.text for m in standin.messages(CHANNEL)] == ["whole"]


def test_injected_429_is_retried_and_other_faults(standin: StandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(builtin_handlers.random, "random", lambda: 0.0)  # no jitter, so no needless sleep
    client = WebClient(
        base_url=standin.api_url,
        token="xoxb-standin",
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=2)],
    )
    standin.inject("chat.postMessage", status=429, retry_after=0, times=2)
    assert client.chat_postMessage(channel=CHANNEL, text="hello")["ok"]
    assert [c.status for c in standin.calls("chat.postMessage")] == [429, 429, 200]
    assert standin.faults_injected == 2

    standin.inject("chat.postMessage")
    status, body, headers = _raw_api(standin, "chat.postMessage", {"channel": CHANNEL, "text": "x"})
    assert (status, body["error"], headers["Retry-After"]) == (429, "ratelimited", "1")
    standin.inject("users.info", status=500)
    assert _raw_api(standin, "users.info", {"user": LEAD})[0] == 500
    standin.inject("users.info", error="user_not_visible")
    with pytest.raises(SlackApiError) as err:
        client.users_info(user=LEAD)
    assert err.value.response["error"] == "user_not_visible"
    assert standin.faults_injected == 5


def test_rate_limit_fraction_is_deterministic(standin: StandIn) -> None:
    standin.rate_limit(0.5, seed=7)
    first = [_raw_api(standin, "users.info", {"user": LEAD})[0] for _ in range(20)]
    assert _raw_api(standin, "auth.test", {})[0] == 200
    standin.rate_limit(0.5, seed=7)
    assert [_raw_api(standin, "users.info", {"user": LEAD})[0] for _ in range(20)] == first
    assert 0 < first.count(429) < 20
    standin.rate_limit(0)
    assert _raw_api(standin, "users.info", {"user": LEAD})[0] == 200


def test_response_url_replies_and_use_limit(standin: StandIn, tiny: tuple[TinyApp, Driver]) -> None:
    _, driver = tiny
    result = driver.slash("/mfi-ar", "respond", user=LEAD, channel=CHANNEL)
    assert result.response.status == 200
    standin.wait_for(lambda: len(standin.responses()) == 2)
    team_reply = standin.wait_for(lambda: standin.last_message(CHANNEL))
    assert team_reply.text == "Saved for the whole team."
    assert standin.ephemerals(LEAD)[-1].text == "Only you can see this."
    for _ in range(3):
        assert (
            urllib.request.urlopen(urllib.request.Request(result.response_url, data=b'{"text":"x"}')).status
            == 200
        )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(urllib.request.Request(result.response_url, data=b'{"text":"x"}'))
    assert err.value.code == 404
    assert standin.violations == ["response_url: used more than 5 times"]


def test_button_click_in_message_replaces_original(standin: StandIn, tiny: tuple[TinyApp, Driver]) -> None:
    app, driver = tiny
    view = driver.slash("/mfi-ar", "plan", user=LEAD, channel=CHANNEL).wait_view()
    driver.submit_view(
        view["id"],
        {"idea": "Swabs", "prediction": 3, "measure": "pph_1500", "study_date": "2026-05-01", "owner": LEAD},
        user=LEAD,
    )
    posted = standin.wait_for(lambda: standin.last_message(CHANNEL))
    with pytest.raises(DriverError, match="found: record_result"):
        driver.click("nope", user=LEAD, message=posted)
    assert driver.click("record_result", user=LEAD, message=posted).status == 200
    assert standin.wait_for(lambda: app.clicks) == ["cycle:1"]
    updated = standin.wait_for(lambda: (m := standin.message(CHANNEL, posted.ts)) and m.edited and m)
    assert updated.text == "Result recorded." and updated.blocks == []


def test_conversations_open_is_stable_and_dms_route_to_it(
    standin: StandIn, tiny: tuple[TinyApp, Driver]
) -> None:
    _, driver = tiny
    client = WebClient(base_url=standin.api_url, token="xoxb-standin")
    first = client.conversations_open(users=MIDWIFE)["channel"]["id"]
    assert first.startswith("D") and client.conversations_open(users=MIDWIFE)["channel"]["id"] == first
    assert standin.dm_channel(MIDWIFE) == first
    driver.slash("/mfi-ar", "dm", user=LEAD, channel=CHANNEL)
    dm = standin.wait_for(lambda: standin.last_message(standin.dm_channel(LEAD)))
    assert dm.text == "A private reminder." and standin.messages(LEAD) == [dm]
    info = client.conversations_info(channel=dm.channel)["channel"]
    assert info["is_im"] and info["user"] == LEAD


def test_directory_methods_auth_and_paging(standin: StandIn) -> None:
    client = WebClient(base_url=standin.api_url, token="xoxb-standin")
    auth = client.auth_test()
    assert (auth["team_id"], auth["user_id"], auth["bot_id"]) == ("T0MFIAR01", "U0MFIBOT", "B0MFIBOT")
    assert "chat:write" in auth.headers["x-oauth-scopes"]
    user = client.users_info(user=LEAD)["user"]
    assert user["tz"] == "Europe/London" and user["tz_offset"] in (0, 3600) and user["is_bot"] is False
    members: list[str] = []
    cursor = None
    while True:
        page = client.conversations_members(channel=CHANNEL, limit=2, cursor=cursor)
        members += page["members"]
        cursor = page["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert members == standin.channel(CHANNEL).members  # type: ignore[union-attr]
    with pytest.raises(SlackApiError) as err:
        WebClient(base_url=standin.api_url, token="xoxb-wrong").auth_test()
    assert err.value.response["error"] == "invalid_auth"


def test_second_workspace_and_oauth_rotation(standin: StandIn) -> None:
    standin.add_team("T0SECOND01", "Second Trust", "xoxb-second", token_rotation=True)
    standin.add_user("U0SECOND01", "s.user", "Sam User", team_id="T0SECOND01")
    standin.add_channel("C0SECOND01", "second-qi", members=["U0SECOND01"], team_id="T0SECOND01")
    second = WebClient(base_url=standin.api_url, token="xoxb-second")
    assert second.auth_test()["team_id"] == "T0SECOND01"
    with pytest.raises(SlackApiError) as err:
        second.chat_postMessage(channel=CHANNEL, text="wrong workspace")
    assert err.value.response["error"] == "channel_not_found"

    anon = WebClient(base_url=standin.api_url)
    installed = anon.oauth_v2_access(
        client_id="c", client_secret="s", code=standin.new_oauth_code("T0SECOND01")
    )
    # With rotation on, the install itself gives an expiring xoxe.xoxb- token (and a refresh token), as Slack does.
    assert installed["access_token"].startswith("xoxe.xoxb-") and installed["expires_in"] == 43200
    assert installed["team"]["id"] == "T0SECOND01"
    rotated = anon.oauth_v2_access(
        client_id="c", client_secret="s", grant_type="refresh_token", refresh_token=installed["refresh_token"]
    )
    assert rotated["access_token"].startswith("xoxe.xoxb-") and rotated["expires_in"] == 43200
    assert rotated["refresh_token"] != installed["refresh_token"]
    with pytest.raises(SlackApiError) as err:
        anon.oauth_v2_access(
            client_id="c",
            client_secret="s",
            grant_type="refresh_token",
            refresh_token=installed["refresh_token"],
        )
    assert err.value.response["error"] == "invalid_refresh_token"
    fresh = WebClient(base_url=standin.api_url, token=rotated["access_token"])
    assert fresh.chat_postMessage(channel="C0SECOND01", text="hi")["ok"]


def test_home_tab_events_and_file_sharing(standin: StandIn, tiny: tuple[TinyApp, Driver]) -> None:
    app, driver = tiny
    assert driver.open_home(LEAD).status == 200
    home = standin.wait_for(lambda: standin.home_view(LEAD))
    assert home["type"] == "home" and home["blocks"][0]["text"]["text"] == "Your PDSA cycles"

    assert driver.mention("show the run chart", user=LEAD, channel=CHANNEL).status == 200
    assert (
        driver.event(
            {"type": "app_mention", "user": LEAD, "text": "<@U0MFIBOT> again", "channel": CHANNEL},
            retry_num=1,
            event_id="Ev0RETRY01",
        ).status
        == 200
    )
    assert standin.wait_for(lambda: len(app.retry_headers) == 2 and app.retry_headers) == [
        (None, None),
        ("1", "http_timeout"),
    ]

    shared = driver.share_file("audit.csv", b"week,pph\n1,12\n", user=LEAD, channel=CHANNEL)
    assert standin.wait_for(lambda: app.shared_bytes) == [b"week,pph\n1,12\n"]
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(shared.url_private_download)
    assert err.value.code == 403


def test_transcript_tells_the_story_with_the_image(
    standin: StandIn, tiny: tuple[TinyApp, Driver], tmp_path: Path
) -> None:
    _, driver = tiny
    standin.note("Planning a cycle")
    view = driver.slash("/mfi-ar", "plan", user=LEAD, channel=CHANNEL).wait_view()
    driver.submit_view(
        view["id"],
        {
            "idea": "Weigh swabs",
            "prediction": 9,
            "measure": "pph_1500",
            "study_date": "2024-01-01",
            "owner": LEAD,
        },
        user=LEAD,
    )
    driver.submit_view(
        view["id"],
        {
            "idea": "Weigh swabs",
            "prediction": 9,
            "measure": "pph_1500",
            "study_date": "2026-06-01",
            "owner": LEAD,
        },
        user=LEAD,
    )
    standin.wait_for(lambda: standin.last_message(CHANNEL))
    standin.note("Studying the results")
    driver.slash("/mfi-ar", "chart", user=LEAD, channel=CHANNEL)
    standin.wait_for(lambda: standin.files())
    path = render_transcript(standin, tmp_path, "Demo: PPH cycle")
    text = path.read_text()
    assert path.name == "transcript.md" and text.startswith("# Demo: PPH cycle")
    assert "## Planning a cycle" in text and "## Studying the results" in text
    assert "Aisha Shah** typed `/mfi-ar plan` in #maternity-pph-qi" in text
    assert (
        "opened the form “Plan a PDSA cycle”" in text
        and "- **Groups expected to benefit** (optional)" in text
    )
    assert "- Measure: **PPH over 1.5 litres (%)**" in text
    assert "⚠️ **Study the results on**: The study date must be in 2026 or later." in text
    assert "[Record result]" in text and "@Aisha Shah" in text
    assert "(only visible to them)" in text
    assert "![Run chart: PPH over 1.5 litres fell" in text and "(1-run-chart.png)" in text
    assert (tmp_path / "1-run-chart.png").read_bytes() == PNG
    assert text.index("## Planning a cycle") < text.index("submitted") < text.index("## Studying the results")


def test_ack_push_view_click_and_views_update(standin: StandIn, tiny: tuple[TinyApp, Driver]) -> None:
    app, driver = tiny
    root = driver.slash("/mfi-ar", "plan", user=LEAD, channel=CHANNEL).wait_view()
    driver.submit_view(
        root["id"],
        {
            "idea": "next step",
            "prediction": 1,
            "measure": "pph_1500",
            "study_date": "2026-01-02",
            "owner": LEAD,
        },
        user=LEAD,
    )
    stack = standin.view_stack(LEAD)
    assert len(stack) == 2 and stack[0] == root["id"]
    pushed = standin.view(stack[1])
    assert pushed["previous_view_id"] == root["id"] and pushed["root_view_id"] == root["id"]

    assert driver.click("refresh", user=LEAD, view_id=pushed["id"]).status == 200
    body = standin.wait_for(lambda: app.refreshes)[0]
    assert body["container"] == {"type": "view", "view_id": pushed["id"]}
    assert body["actions"][0]["value"] == "r1" and "response_url" not in body
    standin.wait_for(lambda: standin.view(pushed["id"])["title"]["text"] == "Refreshed")

    client = WebClient(base_url=standin.api_url, token="xoxb-standin")
    with pytest.raises(SlackApiError) as err:
        client.views_update(view_id=pushed["id"], hash="stale.hash", view=STEP_MODAL)
    assert err.value.response["error"] == "hash_conflict"
    client.views_push(trigger_id=standin.new_trigger_id(user=LEAD), view=STEP_MODAL)
    with pytest.raises(SlackApiError) as err:
        client.views_push(trigger_id=standin.new_trigger_id(user=LEAD), view=STEP_MODAL)
    assert err.value.response["error"] == "push_limit_reached"
    with pytest.raises(ModalError, match="under another form"):
        driver.submit_view(root["id"], {}, user=LEAD)


def test_ephemeral_update_and_delete(standin: StandIn) -> None:
    client = WebClient(base_url=standin.api_url, token="xoxb-standin")
    client.chat_postEphemeral(channel=CHANNEL, user=MIDWIFE, text="Just for you")
    assert [e.text for e in standin.ephemerals(MIDWIFE)] == ["Just for you"]
    parent = client.chat_postMessage(channel=CHANNEL, text="Weekly prompt")
    reply = client.chat_postMessage(channel=CHANNEL, text="In the thread", thread_ts=parent["ts"])
    assert float(reply["ts"]) > float(parent["ts"])
    assert [m.text for m in standin.thread(CHANNEL, parent["ts"])] == ["In the thread"]
    client.chat_update(channel=CHANNEL, ts=parent["ts"], text="Weekly prompt (edited)")
    assert standin.message(CHANNEL, parent["ts"]).text == "Weekly prompt (edited)"  # type: ignore[union-attr]
    client.chat_delete(channel=CHANNEL, ts=reply["ts"])
    assert [m.text for m in standin.messages(CHANNEL)] == ["Weekly prompt (edited)"]
    assert standin.violations == []


def test_post_metadata_is_kept_and_history_pages_newest_first(standin: StandIn) -> None:
    client = WebClient(base_url=standin.api_url, token="xoxb-standin")
    meta = {
        "event_type": "mfi_ar_delivery",
        "event_payload": {"delivery_id": 7, "key": "3:2025-06-16T09:00:00+00:00:C"},
    }
    first = client.chat_postMessage(channel=CHANNEL, text="Prompt one", metadata=meta)
    client.chat_postMessage(channel=CHANNEL, text="In its thread", thread_ts=first["ts"])
    standin.add_user_message(CHANNEL, LEAD, "A person's message")
    last = client.chat_postMessage(channel=CHANNEL, text="Prompt two")
    assert standin.message(CHANNEL, first["ts"]).metadata == meta  # type: ignore[union-attr]

    plain = client.conversations_history(channel=CHANNEL)
    assert [m["text"] for m in plain["messages"]] == ["Prompt two", "A person's message", "Prompt one"]
    assert all("metadata" not in m for m in plain["messages"]) and plain["has_more"] is False
    assert plain["messages"][2]["bot_id"] == "B0MFIBOT" and "bot_id" not in plain["messages"][1]
    with_meta = client.conversations_history(channel=CHANNEL, include_all_metadata=True, limit=2)
    assert [m.get("metadata") for m in with_meta["messages"]] == [None, None] and with_meta[
        "has_more"
    ] is True
    rest = client.conversations_history(
        channel=CHANNEL,
        include_all_metadata=True,
        limit=2,
        cursor=with_meta["response_metadata"]["next_cursor"],
    )
    assert [m["metadata"] for m in rest["messages"]] == [meta]
    assert rest["has_more"] is False and rest["response_metadata"]["next_cursor"] == ""
    # oldest and latest are exclusive unless inclusive is set.
    between = client.conversations_history(channel=CHANNEL, oldest=first["ts"], latest=last["ts"])
    assert [m["text"] for m in between["messages"]] == ["A person's message"]
    both = client.conversations_history(
        channel=CHANNEL, oldest=first["ts"], latest=last["ts"], inclusive=True
    )
    assert len(both["messages"]) == 3
    status, body, _ = _raw_api(standin, "conversations.history", {"channel": CHANNEL, "oldest": "soon"})
    assert (status, body["error"]) == (200, "invalid_ts_oldest")
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel=CHANNEL, text="x", metadata={"event_payload": {}})
    assert err.value.response["error"] == "invalid_metadata_format"
    assert standin.violations == []


def test_history_needs_the_scope_for_the_conversation_type_and_membership(standin: StandIn) -> None:
    client = WebClient(base_url=standin.api_url, token="xoxb-standin")
    standin.add_channel("G0PRIVATE1", "private-qi", members=[LEAD], is_private=True)
    dm = client.conversations_open(users=MIDWIFE)["channel"]["id"]
    for channel in (CHANNEL, "G0PRIVATE1", dm):
        assert client.conversations_history(channel=channel)["ok"]
    with pytest.raises(SlackApiError) as err:
        client.conversations_history(channel="C0OTHERTEAM")
    assert err.value.response["error"] == "not_in_channel"

    team = standin.team()
    granted = team.scopes
    for channel, needed in (
        (CHANNEL, "channels:history"),
        ("G0PRIVATE1", "groups:history"),
        (dm, "im:history"),
    ):
        team.scopes = ",".join(s for s in granted.split(",") if s != needed)
        with pytest.raises(SlackApiError) as err:
            client.conversations_history(channel=channel)
        assert (err.value.response["error"], err.value.response["needed"]) == ("missing_scope", needed)
    assert standin.violations == []


def test_conversations_info_says_whether_the_bot_is_a_member_and_hides_private_channels(
    standin: StandIn,
) -> None:
    client = WebClient(base_url=standin.api_url, token="xoxb-standin")
    assert client.conversations_info(channel=CHANNEL)["channel"]["is_member"] is True
    public = client.conversations_info(channel="C0OTHERTEAM")["channel"]
    assert public["is_member"] is False and public["is_private"] is False
    with pytest.raises(SlackApiError) as err:
        client.chat_postMessage(channel="C0OTHERTEAM", text="hello")
    assert err.value.response["error"] == "not_in_channel"
    # Slack answers channel_not_found for a private channel the bot is not in, as if it did not exist.
    standin.add_channel("G0SECRET01", "secret-qi", members=[LEAD], is_private=True, bot_is_member=False)
    with pytest.raises(SlackApiError) as err:
        client.conversations_info(channel="G0SECRET01")
    assert err.value.response["error"] == "channel_not_found"
    standin.channel("G0SECRET01").members.append(standin.team().bot_user_id)  # /invite @MFI-AR
    assert client.conversations_info(channel="G0SECRET01")["channel"]["is_member"] is True
