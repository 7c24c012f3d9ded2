"""The user's side of the Slack stand-in: signed slash commands, modal submissions, clicks and events over HTTP."""

from __future__ import annotations

import copy
import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from datetime import time as dt_time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from slack_sdk.signature import SignatureVerifier

from bot.offline.standin.server import APP_ID, DEFAULT_TEAM_ID, Message, StandIn, StoredFile

PAYLOAD_DIR = Path(__file__).parent / "payloads"
STALE_SECONDS = 10 * 60
# Slack's limit for a file chosen in a form's file_input.
FILE_INPUT_MAX_BYTES = 10 * 1024 * 1024
ACK_DEADLINE_SECONDS = 3.0

TEXT_INPUTS = {"plain_text_input", "number_input", "email_text_input", "url_text_input"}
SINGLE_SELECTS = {"static_select", "radio_buttons", "external_select"}
MULTI_SELECTS = {"multi_static_select", "checkboxes", "multi_external_select"}


class DriverError(Exception):
    """The driver was asked to do something a person in Slack could not do."""


class ModalError(DriverError):
    """A modal submission the Slack client would refuse (a required field empty, an unknown field, ...)."""


def load_payload(name: str) -> dict[str, Any]:
    """A fresh copy of one of the bundled payload templates (``payloads/<name>.json``)."""
    loaded: dict[str, Any] = json.loads((PAYLOAD_DIR / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


@dataclass
class Response:
    """What the app answered over HTTP."""

    status: int
    body: str
    json: Any | None
    headers: dict[str, str] = field(default_factory=dict)
    # From sending the request to reading the answer: the acknowledgement as Slack times it.
    seconds: float | None = None


@dataclass
class SlashResult:
    """A slash command's HTTP response plus the handles Slack gave the app with it."""

    response: Response
    trigger_id: str
    response_url: str
    standin: StandIn

    def wait_view(self, timeout: float = 15.0) -> dict[str, Any]:
        """Wait until the app opens a view with this command's trigger_id and return it."""
        trigger_id = self.trigger_id

        def view_opened_for_trigger() -> dict[str, Any] | None:
            return self.standin.view_for_trigger(trigger_id)

        return self.standin.wait_for(view_opened_for_trigger, timeout)


def _label(block: Mapping[str, Any]) -> str:
    label = block.get("label")
    return str(label.get("text") or "") if isinstance(label, Mapping) else ""


def _option_text(option: Mapping[str, Any]) -> str:
    text = option.get("text")
    return str(text.get("text") or "") if isinstance(text, Mapping) else str(text or "")


def _options(element: Mapping[str, Any]) -> list[dict[str, Any]]:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options += list(group.get("options") or [])
    return options


def _match_option(element: Mapping[str, Any], wanted: Any, label: str) -> dict[str, Any]:
    if isinstance(wanted, Mapping):
        wanted = wanted.get("value")
    needle = str(wanted).strip()
    options = _options(element)
    for option in options:
        if str(option.get("value")) == needle:
            return copy.deepcopy(option)
    for option in options:
        if _option_text(option).strip().lower() == needle.lower():
            return copy.deepcopy(option)
    choices = ", ".join(f"{_option_text(o)!r} ({o.get('value')})" for o in options)
    raise ModalError(f"{label!r} has no option {needle!r}; choose one of: {choices}")


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def _display(value: Any) -> str:
    """How a state value reads to a person (for the transcript)."""
    if value is None:
        return "(empty)"
    if isinstance(value, list):
        return ", ".join(_display(v) for v in value) or "(none)"
    if isinstance(value, Mapping):
        return _option_text(value) or str(value.get("value") or "")
    return str(value)


def state_value_for(element: Mapping[str, Any], given: Any, label: str) -> dict[str, Any]:
    """One ``state.values[block][action]`` entry, typed the way Slack types it for this element."""
    etype = str(element.get("type"))
    out: dict[str, Any] = {"type": etype}
    if etype in TEXT_INPUTS:
        text = None if _is_empty(given) else str(given)
        if text is not None and etype == "number_input":
            _check_number(element, text, label)
        if text is not None:
            low, high = element.get("min_length"), element.get("max_length")
            if (low is not None and len(text) < int(low)) or (high is not None and len(text) > int(high)):
                raise ModalError(
                    f"{label!r}: the Slack client needs {low or 0}-{high or 'any'} characters (got {len(text)})"
                )
        out["value"] = text
    elif etype in SINGLE_SELECTS:
        out["selected_option"] = None if _is_empty(given) else _match_option(element, given, label)
    elif etype in MULTI_SELECTS:
        wanted = [] if given is None else given if isinstance(given, list | tuple) else [given]
        out["selected_options"] = [_match_option(element, w, label) for w in wanted]
    elif etype == "datepicker":
        out["selected_date"] = (
            given.isoformat() if isinstance(given, date) else (None if _is_empty(given) else str(given))
        )
    elif etype == "timepicker":
        out["selected_time"] = (
            given.strftime("%H:%M")
            if isinstance(given, dt_time)
            else (None if _is_empty(given) else str(given))
        )
    elif etype == "datetimepicker":
        out["selected_date_time"] = None if _is_empty(given) else int(given)
    elif etype == "users_select":
        out["selected_user"] = None if _is_empty(given) else str(given)
    elif etype == "multi_users_select":
        out["selected_users"] = (
            [] if given is None else list(given) if isinstance(given, list | tuple) else [given]
        )
    elif etype == "conversations_select":
        out["selected_conversation"] = None if _is_empty(given) else str(given)
    elif etype == "multi_conversations_select":
        out["selected_conversations"] = (
            [] if given is None else list(given) if isinstance(given, list | tuple) else [given]
        )
    elif etype == "channels_select":
        out["selected_channel"] = None if _is_empty(given) else str(given)
    elif etype == "multi_channels_select":
        out["selected_channels"] = (
            [] if given is None else list(given) if isinstance(given, list | tuple) else [given]
        )
    elif etype == "file_input":
        out["files"] = [] if _is_empty(given) else list(given)
    elif etype == "rich_text_input":
        out["rich_text_value"] = (
            None
            if _is_empty(given)
            else {
                "type": "rich_text",
                "elements": [
                    {"type": "rich_text_section", "elements": [{"type": "text", "text": str(given)}]}
                ],
            }
        )
    else:
        out["value"] = None if _is_empty(given) else str(given)
    return out


def _check_number(element: Mapping[str, Any], text: str, label: str) -> None:
    try:
        number = float(text)
    except ValueError as exc:
        raise ModalError(f"{label!r} only accepts numbers; the Slack client refuses {text!r}") from exc
    if not element.get("is_decimal_allowed") and not float(number).is_integer():
        raise ModalError(f"{label!r} only accepts whole numbers; the Slack client refuses {text!r}")
    low, high = element.get("min_value"), element.get("max_value")
    if (low not in (None, "") and number < float(low)) or (high not in (None, "") and number > float(high)):
        raise ModalError(f"{label!r}: the Slack client refuses {text!r} (allowed range {low}..{high})")


def _initial_value(element: Mapping[str, Any]) -> Any:
    etype = element.get("type")
    if etype in SINGLE_SELECTS:
        return element.get("initial_option")
    if etype in MULTI_SELECTS:
        return list(element.get("initial_options") or [])
    for key in (
        "initial_value",
        "initial_date",
        "initial_time",
        "initial_date_time",
        "initial_user",
        "initial_users",
        "initial_conversation",
        "initial_conversations",
        "initial_channel",
        "initial_channels",
    ):
        if key in element:
            return element[key]
    return None


def _state_is_empty(entry: Mapping[str, Any]) -> bool:
    return all(_is_empty(v) for k, v in entry.items() if k != "type")


def _entry_value(entry: Mapping[str, Any]) -> Any:
    for key, value in entry.items():
        if key != "type":
            return value
    return None


def _button_text(element: Mapping[str, Any]) -> str:
    text = element.get("text")
    return str(text.get("text") or "") if isinstance(text, Mapping) else str(element.get("action_id") or "")


class Driver:
    """Plays the people in Slack: sends correctly signed requests to the running app over real HTTP, or, with
    ``transport="socket"``, the same requests as Socket Mode envelopes over the stand-in's WebSocket server.

    Args:
        app_url: the app's events endpoint, e.g. ``http://127.0.0.1:3000/slack/events`` (unused over Socket Mode).
        transport: ``"http"`` (signed POSTs) or ``"socket"`` (envelopes; the app's acknowledgement is the response).
    """

    def __init__(
        self,
        standin: StandIn,
        app_url: str,
        signing_secret: str,
        team_id: str = DEFAULT_TEAM_ID,
        *,
        timeout: float = 10.0,
        transport: str = "http",
    ) -> None:
        if transport not in ("http", "socket"):
            raise DriverError(f"unknown transport {transport!r}: use 'http' or 'socket'")
        self.transport = transport
        self.standin = standin
        self.app_url = app_url
        self.signing_secret = signing_secret
        self.team_id = team_id
        self.timeout = timeout
        self.last_event_id: str | None = None

    # ------------------------------------------------------------------ transport

    def send_raw(
        self,
        body: bytes,
        headers: Mapping[str, str] | None = None,
        *,
        content_type: str = "application/json",
        sign: bool = True,
        secret: str | None = None,
        timestamp: int | None = None,
    ) -> Response:
        """POST ``body`` to the app. ``secret`` signs with another secret; ``timestamp`` overrides the clock.

        Over Socket Mode the same request goes as an envelope (nothing is signed there: the app dialled Slack).
        """
        if self.transport == "socket":
            return self._send_envelope(body, headers or {}, content_type)
        all_headers = {"Content-Type": content_type}
        if sign:
            ts = str(int(time.time()) if timestamp is None else timestamp)
            verifier = SignatureVerifier(secret if secret is not None else self.signing_secret)
            all_headers["X-Slack-Request-Timestamp"] = ts
            all_headers["X-Slack-Signature"] = verifier.generate_signature(timestamp=ts, body=body) or ""
        all_headers.update(headers or {})
        request = urllib.request.Request(self.app_url, data=body, headers=all_headers, method="POST")
        started = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:
                status, raw, reply_headers = reply.status, reply.read(), dict(reply.headers.items())
        except urllib.error.HTTPError as err:
            status, raw, reply_headers = err.code, err.read(), dict(err.headers.items())
        elapsed = time.monotonic() - started
        if elapsed > ACK_DEADLINE_SECONDS:
            # Slack shows the user a timeout (or re-delivers an event) when the ack takes longer than 3 s.
            self.standin.violations.append(f"app took {elapsed:.1f}s to answer (Slack gives up after 3s)")
        text = raw.decode("utf-8", errors="replace")
        parsed: Any | None = None
        if text.strip():
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
        return Response(status, text, parsed, reply_headers, seconds=elapsed)

    def _send_envelope(self, body: bytes, headers: Mapping[str, str], content_type: str) -> Response:
        """The request as Slack sends it over Socket Mode: a form body becomes a slash_commands payload (its fields)
        or an interactive one (its ``payload`` field); a JSON body an events_api one. The ack is the response."""
        retry_num = 0
        if content_type.startswith("application/x-www-form-urlencoded"):
            fields = {k: v[-1] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
            if "payload" in fields:
                kind, payload = "interactive", json.loads(fields["payload"])
            else:
                kind, payload = "slash_commands", dict(fields)
        else:
            kind, payload = "events_api", json.loads(body)
            retry_num = int({k.lower(): v for k, v in headers.items()}.get("x-slack-retry-num") or 0)
        envelope = self.standin.socket.deliver(kind, payload, timeout=self.timeout, retry_num=retry_num)
        if not envelope.acked.is_set():
            # Slack tells the person the app did not respond (and retries events); no body reached them.
            return Response(504, "", None)
        if (envelope.ack_seconds or 0.0) > ACK_DEADLINE_SECONDS:
            self.standin.violations.append(
                f"app took {envelope.ack_seconds:.1f}s to acknowledge (Slack gives up after 3s)"
            )
        if envelope.response is None:
            return Response(200, "", None, seconds=envelope.ack_seconds)
        return Response(200, json.dumps(envelope.response), envelope.response, seconds=envelope.ack_seconds)

    def _send_form(
        self, fields: Mapping[str, str], *, secret: str | None = None, stale: bool = False
    ) -> Response:
        body = urlencode(fields).encode("utf-8")
        timestamp = int(time.time()) - STALE_SECONDS if stale else None
        return self.send_raw(
            body, content_type="application/x-www-form-urlencoded", secret=secret, timestamp=timestamp
        )

    def _send_payload(self, payload: Mapping[str, Any]) -> Response:
        return self._send_form({"payload": json.dumps(payload)})

    # ------------------------------------------------------------------ people and places

    def _user_fields(self, user: str) -> dict[str, Any]:
        known = self.standin.user(user)
        name = known.name if known else user
        return {"id": user, "username": name, "name": name, "team_id": self.team_id}

    def _team_fields(self) -> dict[str, Any]:
        return {"id": self.team_id, "domain": self.standin.team(self.team_id).domain}

    def _channel_id(self, channel: str, user: str) -> str:
        if channel[:1] in {"U", "W"}:
            return self.standin.dm_channel(channel)
        if channel == "dm":
            return self.standin.dm_channel(user)
        return channel

    # ------------------------------------------------------------------ slash commands

    def slash(
        self,
        command: str,
        text: str = "",
        *,
        user: str,
        channel: str,
        secret: str | None = None,
        stale: bool = False,
    ) -> SlashResult:
        """Type ``command text`` in ``channel`` (a C… id, a D… id, or a user id for that user's DM with the bot)."""
        channel_id = self._channel_id(channel, user)
        known_channel = self.standin.channel(channel_id)
        trigger_id = self.standin.new_trigger_id(user=user, team_id=self.team_id)
        response_url = self.standin.new_response_url(channel=channel_id, user=user, team_id=self.team_id)
        fields = load_payload("slash_command")
        fields.update(
            {
                "team_id": self.team_id,
                "team_domain": self.standin.team(self.team_id).domain,
                "channel_id": channel_id,
                "channel_name": "directmessage"
                if known_channel is None or known_channel.is_im
                else known_channel.name,
                "user_id": user,
                "user_name": self._user_fields(user)["name"],
                "command": command,
                "text": text,
                "api_app_id": APP_ID,
                "is_enterprise_install": "false",
                "response_url": response_url,
                "trigger_id": trigger_id,
            }
        )
        typed = f"{command} {text}".strip()
        seq = self.standin.record_action(
            user,
            "slash",
            f"typed `{typed}` in {self.standin.channel_label(channel_id)}",
            command=command,
            text=text,
            channel=channel_id,
        )
        response = self._send_form({k: str(v) for k, v in fields.items()}, secret=secret, stale=stale)
        if (
            response.status == 200
            and isinstance(response.json, dict)
            and (response.json.get("text") or response.json.get("blocks"))
        ):
            # Slack shows a slash command's ack body to the user who typed it.
            self.standin.record_ack_reply(channel_id, user, response.json, after=seq)
        elif response.status == 200 and response.body.strip() and response.json is None:
            self.standin.record_ack_reply(channel_id, user, {"text": response.body}, after=seq)
        return SlashResult(response, trigger_id, response_url, self.standin)

    # ------------------------------------------------------------------ modals

    def _find_input(self, view: Mapping[str, Any], key: str) -> dict[str, Any]:
        inputs = [b for b in view.get("blocks") or [] if b.get("type") == "input"]
        wanted = key.strip().lower()
        for block in inputs:
            if str(block.get("block_id") or "").lower() == wanted:
                return dict(block)
        for block in inputs:
            if _label(block).strip().lower() == wanted:
                return dict(block)
        fields = "; ".join(f"{_label(b)!r} (block_id {b.get('block_id')!r})" for b in inputs) or "none"
        raise ModalError(f"the form “{_label_of_view(view)}” has no field {key!r}. Fields: {fields}")

    def build_state(
        self, view: Mapping[str, Any], values: Mapping[str, Any], *, user: str | None = None
    ) -> dict[str, Any]:
        """``view.state.values`` as Slack would send it after a person filled in ``values``.

        A ``file_input`` takes ``(filename, bytes)`` or a list of them: the files are uploaded privately as ``user``
        (shared in no channel) and the state carries their file objects, as Slack's does.
        """
        given: dict[str, Any] = {}
        for key, value in values.items():
            block = self._find_input(view, key)
            element = block.get("element") or {}
            if element.get("type") == "file_input" and not _is_empty(value):
                value = self._upload_for_form(element, value, label=_label(block), user=user)
            given[str(block.get("block_id"))] = value
        state: dict[str, Any] = {}
        for block in view.get("blocks") or []:
            if block.get("type") != "input":
                continue
            block_id = str(block.get("block_id"))
            element = block.get("element") or {}
            label = _label(block) or block_id
            raw = given[block_id] if block_id in given else _initial_value(element)
            if isinstance(raw, Mapping) and element.get("type") in SINGLE_SELECTS:
                raw = raw.get("value")
            if isinstance(raw, list) and element.get("type") in MULTI_SELECTS:
                raw = [r.get("value") if isinstance(r, Mapping) else r for r in raw]
            entry = state_value_for(element, raw, label)
            if not block.get("optional") and _state_is_empty(entry):
                raise ModalError(
                    f"“{label}” is required; the Slack client will not submit the form without it"
                )
            state[block_id] = {str(element.get("action_id") or "value"): entry}
        return state

    def submit_view(self, view_id: str, values: Mapping[str, Any], *, user: str) -> Response:
        """Fill in and submit an open modal; keys are block_ids or field labels (case-insensitive)."""
        try:
            view = self.standin.view(view_id)
        except KeyError as exc:
            raise ModalError(f"no view {view_id!r} was ever opened") from exc
        stack = self.standin.view_stack(user)
        if view_id not in stack:
            raise ModalError(f"the form “{_label_of_view(view)}” ({view_id}) is not open for {user}")
        if stack[-1] != view_id:
            raise ModalError(
                f"the form “{_label_of_view(view)}” is under another form; only the top one can be submitted"
            )
        state = self.build_state(view, values, user=user)
        view["state"] = {"values": state}
        payload = load_payload("view_submission")
        payload.update(
            {
                "team": self._team_fields(),
                "user": self._user_fields(user),
                "api_app_id": APP_ID,
                "trigger_id": self.standin.new_trigger_id(user=user, team_id=self.team_id),
                "view": view,
                "response_urls": self._response_urls_for(view, state, user),
                "is_enterprise_install": False,
                "enterprise": None,
            }
        )
        shown = {}
        for block in view.get("blocks") or []:
            if block.get("type") == "input":
                entry = next(iter(state[str(block.get("block_id"))].values()))
                shown[_label(block) or str(block.get("block_id"))] = self._readable(entry)
        seq = self.standin.record_action(
            user, "submit", f"submitted the form “{_label_of_view(view)}”", view_id=view_id, values=shown
        )
        response = self._send_payload(payload)
        self.standin.set_view_state(view_id, state)
        ack = response.json if isinstance(response.json, dict) else {}
        if response.status != 200:
            return response
        action = ack.get("response_action")
        if action == "errors":
            self.standin.apply_view_errors(view_id, dict(ack.get("errors") or {}), after=seq)
        elif action in {"update", "push"}:
            self.standin.ack_view(view_id, str(action), ack.get("view"), user, after=seq)
        elif action == "clear":
            self.standin.close_view(view_id, clear=True, after=seq)
        else:
            self.standin.close_view(view_id, after=seq)
        return response

    def _upload_for_form(
        self, element: Mapping[str, Any], value: Any, *, label: str, user: str | None
    ) -> list[Any]:
        """Upload files the way the Slack client does for a file_input: checked against the element, then private."""
        if user is None:
            raise ModalError(f"{label!r}: a file input needs the submitting user")
        uploads = value if isinstance(value, list) else [value]
        if len(uploads) > int(element.get("max_files") or 10):
            most = int(element.get("max_files") or 10)
            raise ModalError(
                f"{label!r} takes at most {most} {'file' if most == 1 else 'files'}; the Slack client "
                "refuses more"
            )
        allowed = [str(t).lower() for t in element.get("filetypes") or []]
        files: list[Any] = []
        for upload in uploads:
            if isinstance(upload, StoredFile):
                files.append(upload.as_payload())
                continue
            filename, content = upload
            extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
            if allowed and extension not in allowed:
                raise ModalError(
                    f"{label!r} accepts {', '.join(allowed)} files; the Slack client refuses {filename}"
                )
            if len(content) > FILE_INPUT_MAX_BYTES:
                raise ModalError(f"{label!r}: the Slack client refuses files over 10 MB ({filename})")
            stored = self.standin.add_user_file(filename, bytes(content), user=user, channel=None)
            files.append(stored.as_payload())
        return files

    def _readable(self, entry: Mapping[str, Any]) -> str:
        """A state value as a person would read it: names for users, #names for channels."""
        value = _entry_value(entry)
        etype = str(entry.get("type"))
        if etype == "file_input":
            names = [str(f.get("name")) for f in value or [] if isinstance(f, Mapping)]
            return ", ".join(f"📎 {n} (uploaded privately)" for n in names) or "(no file)"
        if etype.endswith("users_select"):
            return ", ".join(self.standin.display_name(u) for u in _as_strings(value)) or "(empty)"
        if "conversations" in etype or "channels" in etype:
            return ", ".join(self.standin.channel_label(c) for c in _as_strings(value)) or "(empty)"
        return _display(value)

    def _response_urls_for(
        self, view: Mapping[str, Any], state: Mapping[str, Any], user: str
    ) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for block in view.get("blocks") or []:
            element = block.get("element") or {}
            if block.get("type") != "input" or not element.get("response_url_enabled"):
                continue
            entry = state[str(block.get("block_id"))][str(element.get("action_id") or "value")]
            channel = entry.get("selected_conversation") or entry.get("selected_channel")
            if channel:
                out.append(
                    {
                        "block_id": block.get("block_id"),
                        "action_id": element.get("action_id"),
                        "channel_id": channel,
                        "response_url": self.standin.new_response_url(
                            channel=channel, user=user, team_id=self.team_id
                        ),
                    }
                )
        return out

    # ------------------------------------------------------------------ clicks

    def click(
        self,
        action_id: str,
        *,
        user: str,
        message: Message | None = None,
        view_id: str | None = None,
        value: Any = None,
        block_id: str | None = None,
        selected_option: Any = None,
    ) -> Response:
        """Click a button (or choose from a select) in a bot message or an open view / Home tab."""
        if (message is None) == (view_id is None):
            raise DriverError("click() needs exactly one of message= or view_id=")
        if message is not None:
            fresh = self.standin.message(message.channel, message.ts)
            if fresh is None:
                raise DriverError(f"message {message.ts} in {message.channel} no longer exists")
            blocks = fresh.blocks
            where = f"a message in {self.standin.channel_label(fresh.channel)}"
        else:
            assert view_id is not None
            if not self.standin.is_open(view_id):
                raise DriverError(f"view {view_id} is not open")
            view = self.standin.view(view_id)
            blocks = list(view.get("blocks") or [])
            where = "the Home tab" if view.get("type") == "home" else f"the form “{_label_of_view(view)}”"
        found_block, element = _find_element(blocks, action_id, block_id)
        action = self._action_for(element, found_block, value, selected_option)
        trigger_id = self.standin.new_trigger_id(user=user, team_id=self.team_id)
        payload: dict[str, Any] = load_payload("block_actions")
        payload.update(
            {
                "user": self._user_fields(user),
                "api_app_id": APP_ID,
                "trigger_id": trigger_id,
                "team": self._team_fields(),
                "enterprise": None,
                "is_enterprise_install": False,
                "actions": [action],
            }
        )
        if message is not None and fresh is not None:
            channel = self.standin.channel(fresh.channel)
            payload["container"] = {
                "type": "message",
                "message_ts": fresh.ts,
                "channel_id": fresh.channel,
                "is_ephemeral": False,
            }
            payload["channel"] = {"id": fresh.channel, "name": channel.name if channel else fresh.channel}
            payload["message"] = fresh.as_payload()
            payload["state"] = {"values": {}}
            payload["response_url"] = self.standin.new_response_url(
                channel=fresh.channel, user=user, team_id=self.team_id, message_ts=fresh.ts
            )
        else:
            assert view_id is not None
            view = self.standin.view(view_id)
            # Clicks inside a modal carry the current, partially filled state; required fields may be empty.
            state: dict[str, Any] = {}
            for block in view.get("blocks") or []:
                if block.get("type") == "input":
                    element_def = block.get("element") or {}
                    label = _label(block)
                    entry = state_value_for(element_def, _plain_initial(element_def), label)
                    state[str(block.get("block_id"))] = {str(element_def.get("action_id") or "value"): entry}
            stored_state = (view.get("state") or {}).get("values") or {}
            state.update(stored_state)
            view["state"] = {"values": state}
            for key in ("channel", "message", "response_url"):
                payload.pop(key, None)
            payload["container"] = {"type": "view", "view_id": view_id}
            payload["view"] = view
            payload["state"] = {"values": state}
        label = (
            _button_text(element)
            if element.get("type") == "button"
            else _display(
                action.get("selected_option") or action.get("selected_options") or action.get("selected_date")
            )
        )
        self.standin.record_action(
            user, "click", f"clicked [{label}] in {where}", action_id=action_id, value=action.get("value")
        )
        return self._send_payload(payload)

    def global_shortcut(self, callback_id: str, *, user: str) -> Response:
        """Use the app's global shortcut ``callback_id`` (a ``shortcut`` payload: no channel, no response_url)."""
        payload: dict[str, Any] = {
            "type": "shortcut",
            "token": load_payload("block_actions").get("token"),
            "action_ts": self.standin.new_ts(),
            "team": self._team_fields(),
            "user": self._user_fields(user),
            "is_enterprise_install": False,
            "enterprise": None,
            "callback_id": callback_id,
            "trigger_id": self.standin.new_trigger_id(user=user, team_id=self.team_id),
        }
        self.standin.record_action(
            user, "shortcut", f"used the shortcut {callback_id}", callback_id=callback_id
        )
        return self._send_payload(payload)

    def message_shortcut(self, callback_id: str, *, message: Message, user: str) -> Response:
        """Use the app's message shortcut ``callback_id`` on ``message`` (a ``message_action`` payload)."""
        fresh = self.standin.message(message.channel, message.ts)
        if fresh is None:
            raise DriverError(f"message {message.ts} in {message.channel} no longer exists")
        channel = self.standin.channel(fresh.channel)
        payload: dict[str, Any] = {
            "type": "message_action",
            "token": load_payload("block_actions").get("token"),
            "action_ts": self.standin.new_ts(),
            "team": self._team_fields(),
            "user": self._user_fields(user),
            "channel": {"id": fresh.channel, "name": channel.name if channel else fresh.channel},
            "is_enterprise_install": False,
            "enterprise": None,
            "callback_id": callback_id,
            "trigger_id": self.standin.new_trigger_id(user=user, team_id=self.team_id),
            "response_url": self.standin.new_response_url(
                channel=fresh.channel, user=user, team_id=self.team_id, message_ts=fresh.ts
            ),
            "message_ts": fresh.ts,
            "message": fresh.as_payload(),
        }
        self.standin.record_action(
            user,
            "shortcut",
            f"used the shortcut {callback_id} on a message in {self.standin.channel_label(fresh.channel)}",
            callback_id=callback_id,
        )
        return self._send_payload(payload)

    def _action_for(
        self, element: Mapping[str, Any], block: Mapping[str, Any], value: Any, selected_option: Any
    ) -> dict[str, Any]:
        etype = str(element.get("type"))
        action: dict[str, Any] = {
            "action_id": element.get("action_id"),
            "block_id": block.get("block_id"),
            "type": etype,
            "action_ts": self.standin.new_ts(),
        }
        if etype == "button":
            action["text"] = copy.deepcopy(element.get("text"))
            action["value"] = str(value) if value is not None else element.get("value")
            if element.get("style"):
                action["style"] = element["style"]
            return action
        if etype == "overflow":
            action["selected_option"] = _match_option(
                element, selected_option or value, _button_text(element)
            )
            return action
        chosen = selected_option if selected_option is not None else value
        entry = state_value_for(element, chosen, str(element.get("action_id")))
        entry.pop("type", None)
        action.update(entry)
        return action

    # ------------------------------------------------------------------ events

    def event(
        self,
        event: Mapping[str, Any],
        *,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
        event_id: str | None = None,
        secret: str | None = None,
        stale: bool = False,
    ) -> Response:
        """Deliver an Events API ``event_callback``; ``retry_num`` makes it a redelivery."""
        envelope = load_payload("event_callback_app_home_opened")
        inner = dict(event)
        inner.setdefault("event_ts", self.standin.new_ts())
        team = self.standin.team(self.team_id)
        event_id = event_id or f"Ev{secrets.token_hex(5).upper()}"
        self.last_event_id = event_id
        envelope.update(
            {
                "team_id": self.team_id,
                "context_team_id": self.team_id,
                "context_enterprise_id": team.enterprise_id,
                "api_app_id": APP_ID,
                "event": inner,
                "event_id": event_id,
                "event_time": int(time.time()),
                "authorizations": [
                    {
                        "enterprise_id": team.enterprise_id,
                        "team_id": self.team_id,
                        "user_id": team.bot_user_id,
                        "is_bot": True,
                        "is_enterprise_install": False,
                    }
                ],
                "is_ext_shared_channel": False,
            }
        )
        headers: dict[str, str] = {}
        if retry_num is not None:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
        timestamp = int(time.time()) - STALE_SECONDS if stale else None
        return self.send_raw(
            json.dumps(envelope).encode("utf-8"), headers, secret=secret, timestamp=timestamp
        )

    def open_home(self, user: str) -> Response:
        """The user opens the app's Home tab (``app_home_opened``, with the published view if any)."""
        event: dict[str, Any] = {
            "type": "app_home_opened",
            "user": user,
            "channel": self.standin.dm_channel(user),
            "tab": "home",
        }
        home = self.standin.home_view(user, self.team_id)
        if home is not None:
            event["view"] = home
        self.standin.record_action(user, "home", "opened the app's Home tab")
        return self.event(event)

    def mention(self, text: str, *, user: str, channel: str, thread_ts: str | None = None) -> Response:
        """Post ``text`` mentioning the bot in ``channel`` (an ``app_mention`` event)."""
        bot = self.standin.team(self.team_id).bot_user_id
        full = text if f"<@{bot}>" in text else f"<@{bot}> {text}"
        self.standin.record_action(user, "mention", f"wrote in {self.standin.channel_label(channel)}: {full}")
        msg = self.standin.add_user_message(channel, user, full, thread_ts=thread_ts)
        event: dict[str, Any] = {
            "type": "app_mention",
            "user": user,
            "text": full,
            "ts": msg.ts,
            "team": self.team_id,
            "channel": channel,
            "event_ts": msg.ts,
        }
        if thread_ts:
            event["thread_ts"] = thread_ts
        return self.event(event)

    def dm(self, text: str, *, user: str) -> Response:
        """Send the bot a direct message (a ``message`` event with ``channel_type: im``)."""
        channel = self.standin.dm_channel(user)
        self.standin.record_action(user, "dm", f"sent the bot a direct message: {text}")
        msg = self.standin.add_user_message(channel, user, text)
        return self.event(
            {
                "type": "message",
                "channel_type": "im",
                "user": user,
                "text": text,
                "ts": msg.ts,
                "team": self.team_id,
                "channel": channel,
                "event_ts": msg.ts,
            }
        )

    def share_file(
        self, filename: str, content: bytes, *, user: str, channel: str, initial_comment: str = ""
    ) -> StoredFile:
        """Upload a file as ``user`` into ``channel`` and send the app a ``file_shared`` event."""
        channel_id = self._channel_id(channel, user)
        self.standin.record_action(
            user,
            "share_file",
            f"uploaded {filename} to {self.standin.channel_label(channel_id)}",
            filename=filename,
            comment=initial_comment,
        )
        stored = self.standin.add_user_file(
            filename, content, user=user, channel=channel_id, initial_comment=initial_comment
        )
        self.event(
            {
                "type": "file_shared",
                "file_id": stored.id,
                "user_id": user,
                "file": {"id": stored.id},
                "channel_id": channel_id,
            }
        )
        return stored


def _as_strings(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _label_of_view(view: Mapping[str, Any]) -> str:
    title = view.get("title")
    return str(title.get("text") or "") if isinstance(title, Mapping) else str(view.get("callback_id") or "")


def _plain_initial(element: Mapping[str, Any]) -> Any:
    raw = _initial_value(element)
    if isinstance(raw, Mapping):
        return raw.get("value")
    if isinstance(raw, list):
        return [r.get("value") if isinstance(r, Mapping) else r for r in raw]
    return raw


def _find_element(
    blocks: list[dict[str, Any]], action_id: str, block_id: str | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    seen: list[str] = []
    for block in blocks:
        if block_id is not None and block.get("block_id") != block_id:
            continue
        candidates: list[Any] = []
        if block.get("type") == "actions":
            candidates = list(block.get("elements") or [])
        elif block.get("type") == "section" and block.get("accessory"):
            candidates = [block["accessory"]]
        elif block.get("type") == "input" and block.get("dispatch_action"):
            candidates = [block.get("element")]
        for element in candidates:
            if isinstance(element, dict):
                seen.append(str(element.get("action_id")))
                if element.get("action_id") == action_id:
                    return block, element
    raise DriverError(
        f"no interactive element with action_id {action_id!r} here; found: {', '.join(seen) or 'none'}"
    )
