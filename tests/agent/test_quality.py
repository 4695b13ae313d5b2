"""The checks on what a small model wrote, and the writer's-words fallback."""

from __future__ import annotations

import pytest

from agent.quality import copied
from agent.quality import junk
from agent.quality import keywords
from agent.quality import on_topic
from agent.quality import scenario_texts
from agent.quality import tidy
from agent.quality import writer_words
from tests.agent.samples import SAMPLE

NAMES = ["Aria Stone", "Mira", "Bram Holt", "The Gull", "Port Veil", "Arrival"]


@pytest.mark.parametrize(
    ("request_text", "words"),
    [
        ("Make Mira a lot taller", "Now a lot taller."),
        ("Give Aria a limp from an old wound", "A limp from an old wound."),
        ("Bram should wear a long red coat", "A long red coat."),
        ("Port Veil needs a lighthouse on the cliffs", "A lighthouse on the cliffs."),
        (
            "Rewrite the backstory so the sea rose because of a curse",
            "The sea rose because of a curse.",
        ),
        ("Bram seems too cartoonish", "No longer cartoonish."),
        ("Make the tone more hopeful", "Now more hopeful."),
        # Nothing concrete to add: only a model can do these.
        ("Add more depth to Aria", ""),
        ("Polish the synopsis", ""),
        ("Tighten the story arc, it rambles", ""),
    ],
)
def test_writer_words(request_text: str, words: str) -> None:
    assert writer_words(request_text, NAMES) == words


def test_tidy_cuts_loops_and_ends_a_sentence() -> None:
    looped = "A man with a scarf, a woman with a scarf on her head, a man with a scarf on his head"
    assert tidy(looped) == "A man with a scarf, a woman with a scarf on her head."
    assert tidy("she waits. she waits. she waits") == "She waits."
    assert tidy("  grey eyes  ") == "Grey eyes."


def test_copies_of_the_scenario_are_found() -> None:
    sources = scenario_texts(SAMPLE)
    assert "photo" not in " ".join(sources) and "iVBOR" not in " ".join(sources)
    assert copied("Now: A courier crosses a drowned empire, fast.", sources)
    assert copied("The sea rose a century ago.", sources)  # a short text taken whole
    assert not copied("She lost her brother at sea and never sailed again.", sources)
    assert not copied("Aria Stone waits at Port Veil.", sources), "names are no copy"


def test_on_topic_accepts_words_of_the_same_meaning() -> None:
    wanted = keywords("Make Mira older", NAMES)
    assert wanted == {"old"}
    assert on_topic("Her hair has gone grey with age.", wanted)
    assert not on_topic("A young woman with bright eyes.", wanted)
    assert on_topic("Anything at all.", keywords("Add more depth to Mira", NAMES))


def test_junk() -> None:
    assert junk("<img src='x'>") and junk("see http://example.com") and junk("...")
    assert not junk("A quiet fisherman.")
