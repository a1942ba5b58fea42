"""What a resident's message asks for: 查询, 评价, 退订/订阅, 帮助, or else a complaint.

Pure and synchronous, the same for every channel. A command is the whole
message: keyword and arguments, give or take greetings, quotes, trailing
punctuation, stray spaces, full-width characters (NFKC), traditional script and
English case. A longer text that merely contains 查询 or a number ("查询了好几次
都没人管，小区路灯坏了") is a complaint, because losing a complaint is worse
than answering a command with a service card.

The English opt-out, opt-in and help words are Twilio's defaults: on SMS
Twilio acts on them itself (blocks or unblocks the number, answers on its own),
so the desk must record the same choice; ``carrier_keyword`` tells the channel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from handlers.workflow import Rating
from nlp.normalise import normalise
from nlp.ticket_numbers import is_valid_ticket_number

# Twilio's default keywords (single words, any case); also what Chinese
# residents type from habit: TD/T is the "回复TD退订" of Chinese carriers.
TWILIO_OPT_OUT = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"}
)
TWILIO_OPT_IN = frozenset({"start", "yes", "unstop"})
TWILIO_HELP = frozenset({"help", "info"})
OPT_OUT_WORDS = TWILIO_OPT_OUT | {"退订", "取消订阅", "退订通知", "td", "t"}
OPT_IN_WORDS = TWILIO_OPT_IN | {"订阅", "恢复订阅", "重新订阅", "恢复通知"}
HELP_WORDS = TWILIO_HELP | {"帮助", "使用帮助", "?"}
TWILIO_KEYWORDS = TWILIO_OPT_OUT | TWILIO_OPT_IN | TWILIO_HELP

RATINGS = {
    "1": Rating.SATISFIED,
    "2": Rating.BASIC,
    "3": Rating.UNSATISFIED,
    "满意": Rating.SATISFIED,
    "基本满意": Rating.BASIC,
    "不满意": Rating.UNSATISFIED,
}

# Quotes come from copying “查询 260000013” out of the service card.
_EDGE_CHARS = " \t\n。.!?,;:~…、\"'“”‘’「」『』【】()《》<>"
_GREETING = re.compile(r"^(?:您好|你好|请问|麻烦您?|请)[\s,]*")
_THANKS = re.compile(r"[\s,]*(?:谢谢(?:您|你)?|多谢|感谢)$")
_QUERY = re.compile(r"(?:查询进度|查进度|进度查询|查询|查|cx)(?:受理编号|编号)?:?\s*(?P<arg>.*)")
_RATE = re.compile(r"(?:评价|pj)(?:受理编号|编号)?:?\s*(?P<arg>.*)")
_BARE_NUMBER = re.compile(r"(?:受理编号|编号)?:?\s*(?P<arg>\d[\d\s]*)")
_DIGITS_AND_SPACES = re.compile(r"[\d\s]*")
_SEPARATORS = re.compile(r"[\s,:]+")
# Longest first: 不满意 and 基本满意 both end with 满意.
_RATING_WORD_AT_END = re.compile(r"(?P<arg>.*?)[\s,:]*(?P<word>不满意|基本满意|满意)")


@dataclass(frozen=True, slots=True)
class Query:
    """查询 <编号>: the status of one ticket."""

    number: str


@dataclass(frozen=True, slots=True)
class ListOpen:
    """查询 alone: the resident's open tickets."""


@dataclass(frozen=True, slots=True)
class Rate:
    """评价 [<编号>] <1-3>; without a number it answers the pending rating prompt."""

    number: str | None
    rating: Rating


@dataclass(frozen=True, slots=True)
class OptOut:
    """退订/STOP: no more rating prompts or broadcasts."""

    keyword: str

    @property
    def carrier_keyword(self) -> bool:
        """True when Twilio acts on this word itself (and answers it) on SMS."""
        return self.keyword in TWILIO_KEYWORDS


@dataclass(frozen=True, slots=True)
class OptIn:
    """订阅/START: prompts and broadcasts again."""

    keyword: str

    @property
    def carrier_keyword(self) -> bool:
        """True when Twilio acts on this word itself (and answers it) on SMS."""
        return self.keyword in TWILIO_KEYWORDS


@dataclass(frozen=True, slots=True)
class Help:
    """帮助/HELP: the short help."""

    keyword: str

    @property
    def carrier_keyword(self) -> bool:
        """True when Twilio acts on this word itself (and answers it) on SMS."""
        return self.keyword in TWILIO_KEYWORDS


@dataclass(frozen=True, slots=True)
class Unclear:
    """A command whose argument cannot be used (a mistyped number, a rating of 5).

    Answered with how to write it: registering "查询 12345678" as a complaint
    would give a department a ticket nobody can act on.
    """

    command: Literal["query", "rate"]


@dataclass(frozen=True, slots=True)
class Complaint:
    """Anything else: the caller registers the text as it came."""

    text: str


ResidentCommand = Query | ListOpen | Rate | OptOut | OptIn | Help | Unclear | Complaint


def parse_resident_message(text: str) -> ResidentCommand:
    """What the resident asks for; a ``Complaint`` when it is not a command."""
    body = _core(text)
    if not body:
        return Complaint(text)
    word = re.sub(r"\s+", "", body)
    if word in OPT_OUT_WORDS:
        return OptOut(word)
    if word in OPT_IN_WORDS:
        return OptIn(word)
    if word in HELP_WORDS:
        return Help(word)
    if word in RATINGS and not word.isdigit():
        return Rate(None, RATINGS[word])
    if match := _QUERY.fullmatch(body):
        return _query(match["arg"]) or Complaint(text)
    if match := _RATE.fullmatch(body):
        return _rate(match["arg"]) or Complaint(text)
    if match := _BARE_NUMBER.fullmatch(body):
        return _bare_number(match["arg"])
    return Complaint(text)


def _core(text: str) -> str:
    """The message as commands are matched: normalised, lower case, without courtesies."""
    body = normalise(text).casefold()
    # "?" alone asks for help; as an edge character it would be stripped away.
    if body and set(body) <= {"?"}:
        return "?"
    previous = None
    while body != previous:
        previous = body
        body = body.strip(_EDGE_CHARS)
        body = _GREETING.sub("", body)
        body = _THANKS.sub("", body)
    return body


def _query(arg: str) -> Query | ListOpen | Unclear | None:
    """查询 [编号]; None when what follows 查询 is words, i.e. a complaint."""
    if not arg:
        return ListOpen()
    if not _DIGITS_AND_SPACES.fullmatch(arg):
        return None
    number = re.sub(r"\s+", "", arg)
    return Query(number) if is_valid_ticket_number(number) else Unclear("query")


def _rate(arg: str) -> Rate | Unclear | None:
    """评价 [编号] 1-3 (or 满意/基本满意/不满意); None when it is words, i.e. a complaint."""
    if not arg:
        return Unclear("rate")
    if match := _RATING_WORD_AT_END.fullmatch(arg):
        number, rating = match["arg"], RATINGS[match["word"]]
    elif _DIGITS_AND_SPACES.fullmatch(arg) or _SEPARATORS.sub("", arg).isdigit():
        tokens = [token for token in _SEPARATORS.split(arg) if token]
        if len(tokens) > 1:
            number, digit = "".join(tokens[:-1]), tokens[-1]
        else:
            # "评价2600001371": the number and the rating typed without a space.
            # Unambiguous: a valid number followed by 1-3 is never itself valid
            # (Damm: after a valid number the check digit of the whole is 0).
            number, digit = tokens[0][:-1], tokens[0][-1]
        if digit not in ("1", "2", "3"):
            return Unclear("rate")
        rating = RATINGS[digit]
    else:
        return None
    number = _SEPARATORS.sub("", number)
    if not number:
        return Rate(None, rating)
    if not number.isdigit():
        return None
    return Rate(number, rating) if is_valid_ticket_number(number) else Unclear("rate")


def _bare_number(arg: str) -> Rate | Query | Unclear:
    """A message of digits only: a rating (1-3) or a ticket number, never a complaint."""
    digits = re.sub(r"\s+", "", arg)
    if len(digits) == 1:
        return Rate(None, RATINGS[digits]) if digits in RATINGS else Unclear("rate")
    return Query(digits) if is_valid_ticket_number(digits) else Unclear("query")
