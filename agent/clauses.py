"""Split a writer's message into requests, and find each request's verb.

Sentence-level English, no scenario: lead-ins ("could you", "I'd like you to", "please")
and trailing courtesy are dropped, "... and then <verb> ..." separates two requests, a
sentence that only describes ("He is a jealous wizard.") stays with the request before it.
"""

from __future__ import annotations

import re

from agent.lexicon import CHAT_OPENERS
from agent.lexicon import CREATE_VERBS
from agent.lexicon import DELETE_VERBS
from agent.lexicon import EXPLAIN_VERBS
from agent.lexicon import MODIFY_VERBS
from agent.lexicon import QUESTION_WORDS
from agent.targets import words

__all__ = ["VERBS", "WANT", "split_clauses", "starts_command", "states", "strip_lead", "verb_of"]

_LEAD = re.compile(
    r"^(?:(?:please|pls|ok(?:ay)?|so|now|also|and|then|hey|hi|hello|alright|right|well|next"
    r"|finally|lastly|first|firstly|oh|actually|hmm+)\b[,!.:]?\s+"
    r"|(?:can|could|would|will)\s+(?:you|u)\s+(?:please\s+)?"
    r"|(?:i'd|i would|we'd|we would)\s+like\s+(?:you\s+)?to\s+"
    r"|(?:i|we)\s+(?:want|need)\s+(?:you\s+)?to\s+"
    r"|(?:can|could|shall|may)\s+(?:we|i)\s+(?:please\s+)?(?=\w+\s)"
    r"|(?:let's|lets|let us|go ahead and|try to|help me|please)\s+)",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?<=[.!?;])\s+(?=\S)|\s*\n+\s*")
_JOINER = re.compile(r"(?:,\s*|\s+)(?:and then|and also|and|then|also|plus)\s+|,\s+", re.I)
_MULTI_VERBS = (
    "get rid of",
    "take out",
    "throw out",
    "flesh out",
    "come up with",
    "make up",
    "set up",
    "put in",
    "throw in",
    "dream up",
    "give me",
    "help me",
    "tell me",
    "walk me through",
    "think of",
    "point out",
    "punch up",
    "spice up",
    "liven up",
    "tone down",
    "clean up",
    "beef up",
    "shake up",
)
VERBS = CREATE_VERBS | DELETE_VERBS | MODIFY_VERBS | EXPLAIN_VERBS
_SPLIT_VERBS = VERBS - {"new", "name", "lose", "cut", "find", "check", "show", "list", "start"}
WANT = re.compile(
    r"^(?:(?:i|we)(?:\s+really)?(?:\s+want|\s+need|\s+would like|'d like|\s+'d like)"
    r"|there\s+(?:should|must|needs to|has to)\s+be|let there be|there's room for"
    r"|(?:get|have)|(?:we|i)\s+(?:could|should)\s+(?:have|get|add))\s+",
    re.IGNORECASE,
)
_COURTESY = re.compile(
    r"[,.!\s]+(?:thanks|thank you|thx|please|cheers|ty)(?:\s+(?:so much|a lot|again))?[.!\s]*$",
    re.IGNORECASE,
)


def strip_lead(text: str) -> str:
    """The request without lead-ins ("could you please") and trailing courtesy."""
    text = _COURTESY.sub("", text)
    previous = None
    while previous != text:
        previous = text
        text = _LEAD.sub("", text.strip(), count=1)
    return text.strip()


def verb_of(body: str) -> tuple[str, str]:
    """(the clause's verb, the rest), verb lower-cased; ("", body) without one."""
    lowered = body.casefold()
    for verb in _MULTI_VERBS:
        if lowered.startswith(verb + " ") or lowered == verb:
            return verb, body[len(verb) :].strip()
    first, _, rest = body.partition(" ")
    return first.casefold().strip(",.!?:;"), rest.strip()


def starts_command(text: str) -> bool:
    """Whether ``text`` starts a request of its own ("... and delete Port Veil")."""
    verb, _ = verb_of(strip_lead(text))
    return verb in _SPLIT_VERBS


def split_clauses(message: str) -> list[str]:
    """Split a message into requests: sentences, and "... and/then <verb> ..." parts.

    A sentence that is neither a request nor a question describes the one before it
    ("Add a villain. He is a jealous wizard named Morvane.") and stays with it.
    """
    clauses: list[str] = []
    for sentence in _SENTENCE.split(message.strip()):
        if not sentence.strip():
            continue
        parts: list[str] = []
        last = 0
        for joint in _JOINER.finditer(sentence):
            if starts_command(sentence[joint.end() :]):
                parts.append(sentence[last : joint.start()])
                last = joint.end()
        parts.append(sentence[last:])
        for part in (p.strip() for p in parts):
            if not part:
                continue
            stripped = strip_lead(part)
            verb, _ = verb_of(stripped)
            first = words(part)[:1]
            describes = (
                clauses
                and verb not in _SPLIT_VERBS  # starts_command(part)
                and not part.rstrip().endswith("?")
                and verb not in QUESTION_WORDS
                and verb not in CHAT_OPENERS
                and bool(first)
                and first[0] not in CHAT_OPENERS
                and not WANT.match(stripped)
            )
            if describes:
                clauses[-1] = f"{clauses[-1].rstrip()} {part}"
            else:
                clauses.append(part)
    return clauses


def states(clause: str) -> bool:
    """Whether a clause only states something (no request, no question): a reason."""
    body = strip_lead(clause)
    verb, _ = verb_of(body)
    return not (
        verb in VERBS or verb in QUESTION_WORDS or body.rstrip().endswith("?") or WANT.match(body)
    )
