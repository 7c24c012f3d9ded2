"""Render what happened on the Slack stand-in as a readable Markdown story, with uploaded files alongside."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.offline.standin.server import LogEntry, StandIn, guess_mimetype

_SLACK_LINK = re.compile(r"<([^<>|]+)(?:\|([^<>]+))?>")


def _plain(obj: Any) -> str:
    if isinstance(obj, Mapping):
        return str(obj.get("text") or "")
    return "" if obj is None else str(obj)


def _mrkdwn(text: str, standin: StandIn) -> str:
    """Turn Slack's <@U…>, <#C…> and <url|label> markup into something a reader understands."""

    def replace(match: re.Match[str]) -> str:
        target, label = match.group(1), match.group(2)
        if target.startswith("@"):
            return "@" + standin.display_name(target[1:])
        if target.startswith("#"):
            return label and f"#{label}" or standin.channel_label(target[1:])
        if target.startswith("!"):
            return "@" + (label or target[1:])
        return f"[{label}]({target})" if label else target

    return _SLACK_LINK.sub(replace, text)


def _element_label(element: Mapping[str, Any]) -> str:
    etype = element.get("type")
    if etype == "button":
        return f"[{_plain(element.get('text'))}]"
    placeholder = _plain(element.get("placeholder"))
    if etype in {"static_select", "multi_static_select", "overflow", "radio_buttons", "checkboxes"}:
        return f"[{placeholder or 'Choose'} ▾: {_option_summary(_all_options(element))}]"
    if etype == "datepicker":
        return f"[📅 {element.get('initial_date') or placeholder or 'pick a date'}]"
    return f"[{placeholder or etype}]"


def _option_summary(options: list[dict[str, Any]], shown: int = 6) -> str:
    """A long dropdown is summarised, as a person would describe it, rather than listed in full."""
    texts = [_plain(o.get("text")) for o in options]
    if len(texts) <= shown + 2:
        return ", ".join(texts)
    return ", ".join(texts[:shown]) + f", … ({len(texts)} options in all)"


def _all_options(element: Mapping[str, Any]) -> list[dict[str, Any]]:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options += list(group.get("options") or [])
    return options


def _initial(element: Mapping[str, Any]) -> str:
    if element.get("initial_option"):
        return _plain(element["initial_option"].get("text"))
    if element.get("initial_options"):
        return ", ".join(_plain(o.get("text")) for o in element["initial_options"])
    for key in (
        "initial_value",
        "initial_date",
        "initial_time",
        "initial_user",
        "initial_conversation",
        "initial_channel",
    ):
        if element.get(key):
            return str(element[key])
    return ""


def render_blocks(blocks: list[dict[str, Any]], standin: StandIn) -> list[str]:
    """Block Kit as Markdown lines a person who has never seen Slack's JSON can read."""
    lines: list[str] = []
    for block in blocks:
        btype = block.get("type")
        if btype == "header":
            lines += [f"### {_plain(block.get('text'))}", ""]
        elif btype == "section":
            if block.get("text"):
                lines += [_mrkdwn(_plain(block["text"]), standin), ""]
            fields = [_mrkdwn(_plain(f), standin).replace("\n", " ") for f in block.get("fields") or []]
            for i in range(0, len(fields), 2):
                pair = fields[i : i + 2]
                lines.append("- " + "  ·  ".join(pair))
            if fields:
                lines.append("")
            accessory = block.get("accessory")
            if isinstance(accessory, Mapping):
                if accessory.get("type") == "image":
                    lines += [f"![{accessory.get('alt_text', '')}]({accessory.get('image_url', '')})", ""]
                else:
                    lines += [_element_label(accessory), ""]
        elif btype == "context":
            parts = []
            for el in block.get("elements") or []:
                if el.get("type") == "image":
                    parts.append(f"({el.get('alt_text', 'image')})")
                else:
                    parts.append(_mrkdwn(_plain(el), standin))
            lines += [f"<sub>{' · '.join(parts)}</sub>", ""]
        elif btype == "divider":
            lines += ["***", ""]
        elif btype == "actions":
            labels = [_element_label(el) for el in block.get("elements") or [] if isinstance(el, Mapping)]
            lines += [" ".join(labels), ""]
        elif btype == "image":
            alt = str(block.get("alt_text") or "")
            title = _plain(block.get("title"))
            if block.get("slack_file"):
                # An uploaded file: the picture and its description follow the message (see _entry_lines).
                lines += [f"**{title}**" if title else "*(chart)*", ""]
            else:
                lines += [f"![{alt}]({block.get('image_url', '')})", f"*Image description:* {alt}", ""]
                if title:
                    lines.insert(-3, f"**{title}**")
        elif btype == "input":
            element = block.get("element") or {}
            label = _plain(block.get("label"))
            optional = " (optional)" if block.get("optional") else ""
            detail = _initial(element)
            options = _all_options(element)
            line = f"- **{label}**{optional}: "
            if detail:
                line += f"_{detail}_"
            elif element.get("type") == "file_input":
                kinds = ", ".join(f".{t}" for t in element.get("filetypes") or []) or "any file"
                line += f"file picker ({kinds}; the file goes to the app only)"
            elif options:
                line += "choose from " + _option_summary(options)
            elif element.get("placeholder"):
                line += f"blank (e.g. “{_plain(element.get('placeholder'))}”)"
            else:
                line += "_blank_"
            lines.append(line)
            if block.get("hint"):
                lines.append(f"  <sub>{_plain(block.get('hint'))}</sub>")
        elif btype == "markdown":
            lines += [str(block.get("text") or ""), ""]
        elif btype == "rich_text":
            lines += [_rich_text(block), ""]
        else:
            lines += [f"_[{btype} block]_", ""]
    if lines and lines[-1] != "" and any(b.get("type") == "input" for b in blocks):
        lines.append("")
    return lines


def _rich_text(block: Mapping[str, Any]) -> str:
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            if node.get("type") == "text":
                out.append(str(node.get("text") or ""))
            for child in node.get("elements") or []:
                walk(child)

    walk(block)
    return "".join(out)


def _quote(lines: list[str]) -> list[str]:
    return [f"> {line}" if line else ">" for line in lines]


def _message_lines(message: Mapping[str, Any], standin: StandIn, files_md: list[str]) -> list[str]:
    body: list[str] = []
    blocks = list(message.get("blocks") or [])
    if blocks:
        body += render_blocks(blocks, standin)
    elif message.get("text"):
        body += [_mrkdwn(str(message["text"]), standin), ""]
    body += files_md
    while body and body[-1] == "":
        body.pop()
    return _quote(body) + [""]


def _view_lines(view: Mapping[str, Any], standin: StandIn) -> list[str]:
    body: list[str] = []
    if view.get("type") == "modal":
        body += [f"**{_plain(view.get('title'))}**", ""]
    body += render_blocks(list(view.get("blocks") or []), standin)
    buttons = [f"[{_plain(view.get(k))}]" for k in ("close", "submit") if view.get(k)]
    if buttons:
        body.append(" ".join(buttons))
    while body and body[-1] == "":
        body.pop()
    return _quote(body) + [""]


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "file"


def render_transcript(standin: StandIn, out_dir: Path, title: str) -> Path:
    """Write ``out_dir/transcript.md`` (and the uploaded files next to it); returns the Markdown path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    lines: list[str] = [f"# {title}", ""]
    written: dict[str, str] = {}
    file_count = 0

    def file_markdown(file_id: str) -> list[str]:
        nonlocal file_count
        stored = standin.file(file_id)
        if stored is None:
            return [f"_(file {file_id} missing)_"]
        if file_id not in written:
            file_count += 1
            name = f"{file_count}-{_safe_name(stored.filename)}"
            (out_dir / name).write_bytes(stored.bytes)
            written[file_id] = name
        name = written[file_id]
        if guess_mimetype(stored.filename).startswith("image/"):
            alt = (stored.alt_txt or stored.title or stored.filename).replace("\n", " ")
            out = [f"![{alt}]({name})", "", f"*Image description:* {stored.alt_txt or '(none given)'}"]
        else:
            out = [f"📎 [{stored.title or stored.filename}]({name}) ({len(stored.bytes):,} bytes)"]
        return out

    # The bot refreshes Home tabs in the background after most changes; in the story a Home tab is shown in full
    # when its owner opens it (or the first time), and otherwise as a one-line refresh.
    opened: set[str] = set()
    shown_home: set[str] = set()
    for entry in standin.log():
        if entry.side == "user" and entry.kind == "home" and entry.user:
            opened.add(entry.user)
        if entry.kind == "home_published":
            owner = entry.user or ""
            if owner in shown_home and owner not in opened:
                when = datetime.fromtimestamp(entry.time).strftime("%H:%M:%S")
                lines += [
                    f"**🤖 mfi-ar** refreshed {standin.display_name(owner)}'s Home tab <sub>{when}</sub>",
                    "",
                ]
                continue
            shown_home.add(owner)
            opened.discard(owner)
        lines += _entry_lines(entry, standin, file_markdown)
    path = out_dir / "transcript.md"
    path.write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return path


def _entry_lines(entry: LogEntry, standin: StandIn, file_markdown: Callable[[str], list[str]]) -> list[str]:
    when = datetime.fromtimestamp(entry.time).strftime("%H:%M:%S")
    data = entry.data
    if entry.side == "note":
        return [f"## {entry.summary}", ""]
    if entry.side == "user":
        who = standin.display_name(entry.user)
        lines = [f"**🧑 {who}** {entry.summary} <sub>{when}</sub>", ""]
        values = data.get("values")
        if isinstance(values, Mapping):
            lines += [f"- {label}: **{value}**" for label, value in values.items()] + [""]
        return lines
    bot = "**🤖 mfi-ar**"
    kind = entry.kind
    if kind in {"message", "message_updated", "ephemeral", "response_delete", "message_deleted"}:
        message = data.get("message") or {}
        files_md: list[str] = []
        for file_id in message.get("files") or []:
            files_md += file_markdown(file_id) + [""]
        for block in message.get("blocks") or []:
            slack_file = block.get("slack_file") if isinstance(block, Mapping) else None
            if isinstance(slack_file, Mapping) and slack_file.get("id"):
                files_md += file_markdown(str(slack_file["id"])) + [""]
        head = f"{bot} {entry.summary} <sub>{when}</sub>"
        if kind in {"response_delete", "message_deleted"}:
            return [head, ""]
        if message.get("thread_ts"):
            head += " <sub>(thread reply)</sub>"
        return [head, "", *_message_lines(message, standin, files_md)]
    if kind in {"view_opened", "view_updated", "view_pushed", "home_published"}:
        return [f"{bot} {entry.summary} <sub>{when}</sub>", "", *_view_lines(data.get("view") or {}, standin)]
    if kind == "view_errors":
        errors = data.get("errors") or {}
        view = standin.view(str(data.get("view_id")))
        labels = {b.get("block_id"): _plain(b.get("label")) for b in view.get("blocks") or []}
        items = [f"> - ⚠️ **{labels.get(k) or k}**: {v}" for k, v in errors.items()]
        return [f"{bot} {entry.summary} <sub>{when}</sub>", "", *items, ""]
    if kind == "file" and not data.get("channel"):
        return [f"{bot} {entry.summary} <sub>{when}</sub>", ""]  # shown where a message's image block uses it
    if kind == "file":
        body = [_mrkdwn(str(data["comment"]), standin), ""] if data.get("comment") else []
        body += file_markdown(str(data.get("file_id")))
        return [f"{bot} {entry.summary} <sub>{when}</sub>", "", *_quote(body), ""]
    return [f"{bot} {entry.summary} <sub>{when}</sub>", ""]
