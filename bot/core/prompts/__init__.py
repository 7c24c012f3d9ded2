"""The MFI-AR reflective-prompt catalogue and the rules for choosing the next prompt."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Literal, get_args

import yaml

Audience = Literal["team", "lead", "partner"]
AUDIENCES: tuple[str, ...] = get_args(Audience)

MfiQuestion = Literal["aim", "measures", "changes-and-testing"]
MFI_QUESTIONS: tuple[str, ...] = get_args(MfiQuestion)

# The seven MFI-AR principles in framework order; the YAML must hold exactly these.
STAGE_IDS: tuple[str, ...] = ("naming", "understanding", "bias", "data", "lens", "involvement", "evaluation")

__all__ = [
    "AUDIENCES",
    "MFI_QUESTIONS",
    "STAGE_IDS",
    "STEPS",
    "Audience",
    "Catalogue",
    "ProjectState",
    "Prompt",
    "Stage",
    "choose_prompt",
    "load_catalogue",
    "parse_catalogue",
    "reason_for",
    "stages_for",
]


@dataclass(frozen=True)
class Stage:
    """One MFI-AR principle, the Model for Improvement question it sits under, and why it matters."""

    id: str
    title: str
    question: str
    why: str
    # The framework's guiding prompts for this stage, paraphrased; Prompt.principle is one of these.
    principles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Prompt:
    """One reflective question; `plain` is the partner wording, `text` the team/lead wording."""

    id: str
    stage: str
    principle: str
    audience: tuple[str, ...]
    text: str
    plain: str | None
    follow_up: str | None
    # The PDSA step the question is about ("plan", "study" or "act"), when it is tied to one: the label people
    # see says so, so a planning question is never presented as a reflection on a finished test.
    step: str | None = None

    def text_for(self, audience: str) -> str:
        """The wording to show this audience: partners get the plain-language version."""
        if audience == "partner":
            if self.plain is None:
                raise ValueError(f"prompt {self.id!r} has no plain-language text for partners")
            return self.plain
        return self.text


@dataclass(frozen=True)
class Catalogue:
    """All stages and prompts, in the order the YAML lists them."""

    stages: tuple[Stage, ...]
    prompts: tuple[Prompt, ...]

    def get(self, prompt_id: str) -> Prompt:
        """Return the prompt with this id; raise KeyError if there is none."""
        for prompt in self.prompts:
            if prompt.id == prompt_id:
                return prompt
        raise KeyError(prompt_id)

    def stage(self, stage_id: str) -> Stage:
        """Return the stage with this id; raise KeyError if there is none."""
        for stage in self.stages:
            if stage.id == stage_id:
                return stage
        raise KeyError(stage_id)

    def for_stage(self, stage: str, audience: str) -> list[Prompt]:
        """Prompts of one stage meant for one audience, in catalogue order."""
        return [
            p
            for p in self.prompts
            if p.stage == stage and audience in p.audience and (audience != "partner" or p.plain is not None)
        ]


# ---------------------------------------------------------------------------
# Loading and validation
# ---------------------------------------------------------------------------


def _text(entry: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
    value = entry.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where}: {key!r} must be a non-empty string")
    return " ".join(value.split())


def _parse_stage(entry: object, index: int) -> Stage:
    if not isinstance(entry, Mapping):
        raise ValueError(f"stage #{index}: expected a mapping")
    where = f"stage {entry.get('id', f'#{index}')!r}"
    stage_id = _text(entry, "id", where)
    question = _text(entry, "question", where)
    if question not in MFI_QUESTIONS:
        raise ValueError(f"{where}: question {question!r} is not one of {', '.join(MFI_QUESTIONS)}")
    raw_principles = entry.get("principles")
    if not isinstance(raw_principles, list) or not raw_principles:
        raise ValueError(f"{where}: 'principles' must be a non-empty list")
    principles = tuple(" ".join(str(p).split()) for p in raw_principles)
    if len(set(principles)) != len(principles):
        raise ValueError(f"{where}: principles repeat")
    return Stage(
        id=str(stage_id),
        title=str(_text(entry, "title", where)),
        question=str(question),
        why=str(_text(entry, "why", where)),
        principles=principles,
    )


def _parse_prompt(entry: object, index: int, stages: Mapping[str, Stage]) -> Prompt:
    if not isinstance(entry, Mapping):
        raise ValueError(f"prompt #{index}: expected a mapping")
    where = f"prompt {entry.get('id', f'#{index}')!r}"
    prompt_id = str(_text(entry, "id", where))
    stage_id = str(_text(entry, "stage", where))
    if stage_id not in stages:
        raise ValueError(f"{where}: unknown stage {stage_id!r}")
    # Ids are stored in the ledger, so tie them visibly to their stage.
    if not prompt_id.startswith(f"{stage_id}."):
        raise ValueError(f"{where}: id must start with {stage_id + '.'!r}")
    principle = str(_text(entry, "principle", where))
    if principle not in stages[stage_id].principles:
        raise ValueError(f"{where}: principle {principle!r} is not listed under stage {stage_id!r}")
    raw_audience = entry.get("audience")
    if not isinstance(raw_audience, list) or not raw_audience:
        raise ValueError(f"{where}: 'audience' must be a non-empty list")
    audience = tuple(str(a) for a in raw_audience)
    unknown = [a for a in audience if a not in AUDIENCES]
    if unknown:
        raise ValueError(f"{where}: unknown audience {', '.join(unknown)}")
    plain = _text(entry, "plain", where, required=False)
    if "partner" in audience and plain is None:
        raise ValueError(f"{where}: partner prompts need 'plain' wording")
    return Prompt(
        id=prompt_id,
        stage=stage_id,
        principle=principle,
        audience=audience,
        text=str(_text(entry, "text", where)),
        plain=plain,
        follow_up=_text(entry, "follow_up", where, required=False),
        step=_step(entry, where),
    )


STEPS: dict[str, str] = {
    "plan": "Planning your next test",
    "study": "Studying a test",
    "act": "Deciding what next",
}


def _step(entry: Mapping[str, object], where: str) -> str | None:
    step = entry.get("step")
    if step is None:
        return None
    if step not in STEPS:
        raise ValueError(f"{where}: step {step!r} is not one of {', '.join(STEPS)}")
    return str(step)


def parse_catalogue(data: object) -> Catalogue:
    """Build and validate a catalogue from parsed YAML; raise ValueError naming the bad entry."""
    if not isinstance(data, Mapping):
        raise ValueError("catalogue: expected a mapping with 'stages' and 'prompts'")
    raw_stages, raw_prompts = data.get("stages"), data.get("prompts")
    if not isinstance(raw_stages, list) or not isinstance(raw_prompts, list):
        raise ValueError("catalogue: 'stages' and 'prompts' must both be lists")

    stages = tuple(_parse_stage(entry, i) for i, entry in enumerate(raw_stages))
    stage_ids = [s.id for s in stages]
    if sorted(stage_ids) != sorted(STAGE_IDS):
        raise ValueError(
            f"catalogue: stages must be exactly {', '.join(STAGE_IDS)}; got {', '.join(stage_ids)}"
        )
    by_id = {s.id: s for s in stages}

    prompts: list[Prompt] = []
    seen: set[str] = set()
    for i, entry in enumerate(raw_prompts):
        prompt = _parse_prompt(entry, i, by_id)
        if prompt.id in seen:
            raise ValueError(f"prompt {prompt.id!r}: duplicate id")
        seen.add(prompt.id)
        prompts.append(prompt)

    for stage in stages:
        if not any(p.stage == stage.id and "team" in p.audience for p in prompts):
            raise ValueError(f"stage {stage.id!r}: has no team prompts")
        for principle in stage.principles:
            if not any(p.principle == principle for p in prompts):
                raise ValueError(f"stage {stage.id!r}: principle {principle!r} has no prompts")
    return Catalogue(stages=stages, prompts=tuple(prompts))


@cache
def load_catalogue() -> Catalogue:
    """The packaged catalogue, parsed and validated once per process."""
    source = resources.files(__name__).joinpath("catalogue.yaml").read_text(encoding="utf-8")
    return parse_catalogue(yaml.safe_load(source))


# ---------------------------------------------------------------------------
# Choosing what to ask
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ProjectState:
    """What the bot knows about a project that decides which stage to prompt on."""

    has_aim_for_whom: bool
    measure_count: int
    has_balancing_measure: bool
    open_cycle_count: int
    cycles_awaiting_study: int
    acted_since_last_prompt: bool
    has_partners: bool
    racism_context_recorded: bool


@dataclass(frozen=True)
class _Rule:
    applies: Callable[[ProjectState], bool]
    # stage id -> the context line shown with a prompt from that stage
    reasons: Mapping[str, str]


# Ordered by urgency. Live PDSA moments come first because they pass
# (a prediction is only useful before the test, a reflection soon after Act);
# then the foundations in Model for Improvement order: aim, then measures, then people.
_RULES: tuple[_Rule, ...] = (
    _Rule(
        lambda s: s.acted_since_last_prompt,
        {
            "evaluation": "You have just decided what to do with a change, so this week is about who it worked for."
        },
    ),
    _Rule(
        lambda s: s.cycles_awaiting_study > 0,
        {
            "evaluation": "A test is waiting to be studied, so this week is about who it did and didn't work for.",
            "involvement": "A test is waiting to be studied, so this week is about who judges the results with you.",
        },
    ),
    _Rule(
        lambda s: s.open_cycle_count > 0,
        {
            "involvement": "You have a test under way, so this week is about who is shaping it.",
            "evaluation": "You have a test under way, so this week is about predicting what it will do for each group.",
        },
    ),
    _Rule(
        lambda s: not s.racism_context_recorded,
        {
            "naming": "You haven't yet recorded how racism shows up in this work, so this week starts with naming it.",
            "understanding": "You haven't yet recorded how racism shows up in this work, so this week is about its causes.",
            "bias": "You haven't yet recorded how racism shows up in this work, so this week is about where bias sits.",
        },
    ),
    _Rule(
        lambda s: not s.has_aim_for_whom,
        {
            "naming": "Your aim doesn't yet say who it is for, so this week is about naming that.",
            "understanding": "Your aim doesn't yet say who it is for, so this week is about who the gap affects and why.",
        },
    ),
    _Rule(
        lambda s: s.measure_count == 0,
        {
            "data": "You have no measures yet, so this week is about data.",
            "lens": "You have no measures yet, so this week is about measures that show the gap.",
        },
    ),
    _Rule(
        lambda s: not s.has_balancing_measure,
        {
            "lens": "You have no balancing measure yet, so this week is about catching side effects for any group.",
            "data": "You have no balancing measure yet, so this week is about what your data can show for each group.",
        },
    ),
    _Rule(
        lambda s: not s.has_partners,
        {
            "involvement": "No partners with lived experience have joined yet, so this week is about involving them."
        },
    ),
)

_ROTATION_FOCUS: Mapping[str, str] = {
    "naming": "naming racism",
    "understanding": "the causes of the gap",
    "bias": "where bias sits",
    "data": "data",
    "lens": "measures that show the gap",
    "involvement": "who shapes the work",
    "evaluation": "who the change works for",
}


def stages_for(state: ProjectState) -> list[str]:
    """Every stage id, most relevant to this project's state first.

    Stages flagged by the state come first (in the order of `_RULES`), then the rest
    in framework order, so a team eventually hears from every stage.
    """
    order: list[str] = []
    for rule in _RULES:
        if rule.applies(state):
            order.extend(s for s in rule.reasons if s not in order)
    order.extend(s for s in STAGE_IDS if s not in order)
    return order


def reason_for(stage: str, state: ProjectState) -> str:
    """One line for the message context: why a prompt from this stage is being asked now."""
    if stage not in STAGE_IDS:
        raise ValueError(f"unknown stage {stage!r}")
    for rule in _RULES:
        if stage in rule.reasons and rule.applies(state):
            return rule.reasons[stage]
    # Reached when the flagged stages' prompts are used up, or nothing is flagged at all.
    return f"Part of the regular rotation: this week is about {_ROTATION_FOCUS[stage]}."


def _current_round(pool: Sequence[str], used: Sequence[str]) -> set[str]:
    """Ids from `pool` asked in the stage's current round.

    A round is a pass through every prompt in the pool. The history is replayed
    oldest first; once a round has covered the whole pool, the next pool id seen
    starts a new round. The round is not reset eagerly, so a stage whose round is
    complete reads as used up and the chooser moves on to the next stage.
    """
    pool_ids = set(pool)
    current: set[str] = set()
    for prompt_id in used:
        if prompt_id not in pool_ids:
            continue
        if current >= pool_ids:
            current = set()
        current.add(prompt_id)
    return current


def _least_recent(pool: Sequence[str], used: Sequence[str]) -> str:
    last_seen = {prompt_id: i for i, prompt_id in enumerate(used)}
    # Never-asked prompts sort first; ties keep catalogue order (min is stable).
    return min(pool, key=lambda prompt_id: last_seen.get(prompt_id, -1))


def _as_seen_by(prompt: Prompt, audience: str) -> Prompt:
    # Partners see `plain`; swapping it into `text` lets every caller just show `.text`.
    if audience == "partner":
        return dataclasses.replace(prompt, text=prompt.text_for("partner"))
    return prompt


def choose_prompt(
    catalogue: Catalogue,
    state: ProjectState,
    *,
    audience: Audience,
    used: Sequence[str],
    pinned: str | None = None,
    skipped: Collection[str] = (),
) -> Prompt:
    """Pick the next prompt for one audience, deterministically.

    Args:
        used: ids already sent to this audience, oldest first (the ledger's history).
        pinned: a prompt id a lead asked to send next. It wins once: if it is the most
            recent entry of `used` it has been delivered and is ignored. A pin that is
            unknown, skipped, or not meant for this audience is ignored too, so a stale
            pin never blocks the weekly prompt.
        skipped: ids never to send (for example ones the team said don't fit).

    Rules: walk `stages_for(state)` and take the first stage whose current round
    (see `_current_round`) still has unasked, unskipped prompts; within it take the
    first such prompt in catalogue order. When every stage's round is complete, the
    most preferred stage starts a new round with its least recently asked prompt.
    For partners the returned prompt's `text` is the plain-language wording.

    Raises:
        LookupError: every prompt for this audience is skipped.
    """
    skip = set(skipped)

    if pinned is not None and not (used and used[-1] == pinned) and pinned not in skip:
        try:
            prompt = catalogue.get(pinned)
        except KeyError:
            prompt = None
        if prompt is not None and prompt in catalogue.for_stage(prompt.stage, audience):
            return _as_seen_by(prompt, audience)

    pools: list[list[str]] = []
    for stage in stages_for(state):
        pool = [p.id for p in catalogue.for_stage(stage, audience) if p.id not in skip]
        if not pool:
            continue
        pools.append(pool)
        asked = _current_round(pool, used)
        for prompt_id in pool:
            if prompt_id not in asked:
                return _as_seen_by(catalogue.get(prompt_id), audience)

    if not pools:
        raise LookupError(f"no prompts left for audience {audience!r}: all are skipped")
    return _as_seen_by(catalogue.get(_least_recent(pools[0], used)), audience)
