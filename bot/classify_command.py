"""``complaint-desk classify "text"``: how the desk would route one message, and why."""

from __future__ import annotations

import argparse
import sys

from bot.settings import Settings
from bot.startup import load_classifier
from handlers.desk_config import DeskConfig
from handlers.nlp_setup import load_nlp
from handlers.routing import Router
from nlp.extract import phone_numbers, place_names
from nlp.normalise import normalise
from nlp.ticket_numbers import find_ticket_numbers


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``classify`` on the CLI."""
    parser = commands.add_parser(
        "classify", help="show category, department, confidence and evidence for a text"
    )
    parser.add_argument("text", help="the complaint, in quotes")


def say(line: str = "") -> None:
    """Write one line of command output."""
    sys.stdout.write(line + "\n")


def classify_command(text: str, settings: Settings, config: DeskConfig) -> int:
    """Print the routing decision for ``text`` with the engine ``serve`` would use."""
    load_nlp(config)
    router = Router(config, load_classifier(settings.classifier_model, config))
    normalised = normalise(text)
    decision = router.route(normalised)
    names = {d.code: d.short_name for d in config.departments}
    say(f"engine       {router.classifier.name}")
    say(f"category     {decision.category or '-'}")
    say(f"confidence   {decision.confidence:.2f}")
    say(f"evidence     {'、'.join(decision.evidence) or '-'}")
    if decision.department is None:
        say("department   - (triage: a person chooses)")
    else:
        co = "、".join(names[c] for c in decision.co_departments)
        say(f"department   {names[decision.department]}" + (f"（协办：{co}）" if co else ""))
    if decision.accused_departments:
        accused = "、".join(names[c] for c in decision.accused_departments)
        say(f"accused      {accused} (conduct complaint)")
    say(f"urgent       {'yes' if decision.urgent else 'no'}")
    for score in decision.suggestions:
        say(f"  {score.confidence:.2f} {score.category}  {'、'.join(score.evidence)}")
    for label, found in (
        ("places", place_names(normalised)),
        ("phones", phone_numbers(normalised)),
        ("tickets", find_ticket_numbers(normalised)),
    ):
        if found:
            say(f"{label:<12} {'、'.join(found)}")
    return 0
