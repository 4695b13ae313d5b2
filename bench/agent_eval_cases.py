"""The dev set of the agent evaluation: what writers type into StoryWriter's chat panel.

Messages are written the way writers phrase requests (commands, wishes, questions,
politeness, names in lower case, several requests at once), on the scenarios of
``bench.agent_eval_scenarios``. They were written from the writer's side, before and
independently of the agent's rules; the parser's unit tests (tests/agent/test_commands.py)
use other phrasings, so that the rules are checked to generalise beyond this list.

Coverage: every operation (explain, chat, modify, create, delete, clarify), every entity
kind (characters, locations, scenes) and top-level field (title, synopsis, story arc,
backstory, notes, writing style), renames (which scenes must follow), deletes, multi-entity
and multi-operation requests, named entities that do not exist, ambiguous references, a
whole new scenario, and the four starter suggestions of the chat panel.
"""

from __future__ import annotations

from bench.agent_eval_model import Add
from bench.agent_eval_model import Case
from bench.agent_eval_model import Edit
from bench.agent_eval_model import NewScenario
from bench.agent_eval_model import Remove
from bench.agent_eval_model import SetField
from bench.agent_eval_model import Step

__all__ = ["CASES", "STARTERS"]

STARTERS = (
    "Explain the main conflict in this scenario",
    "Add more depth to the main character",
    "Suggest plot twists for this story",
    "Create a new supporting character",
)
"""The chat panel's starter suggestions, verbatim."""

# salt_road
ARIA = "0b6c3f5e-8f0a-4c55-9c1e-1d2a3b4c5d6e"
MIRA = "legacy-id-mira"
BRAM = "legacy-id-bram"
TOBIN = "5f1e9a7c-2d3b-4e8f-a6c5-7b9d0e1f2a3b"
PORT = "loc-port"
LANTERN = "6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d"
ARRIVAL = "scene-arrival"
# glass_orbit
IDRIS = "9b2f6c1a-3e4d-4f5a-8b6c-7d8e9f0a1b2c"
SEFA = "a3c5e7f9-1b2d-4e6f-8a0c-2e4f6a8c0e1f"
JUNO = "b4d6f8a0-2c3e-4f5a-9b1d-3f5a7c9e1b2d"
HALE = "c5e7a9b1-3d4f-4a6b-8c2e-4a6c8e0a2c3e"
KEPLER = "e7a9c1d3-5f6b-4c8d-8e4a-6c8e0a2c4e5a"
DUNES = "f8b0d2e4-6a7c-4d9e-9f5b-7d9f1b3d5f6b"
# lantern_street
JUNE = "22222222-3333-4444-8555-666677778888"
WALTER = "33333333-4444-4555-8666-777788889999"
LOU = "44444444-5555-4666-8777-88889999aaaa"
HERON = "66666666-7777-4888-8999-aaaabbbbcccc"
PRECINCT = "77777777-8888-4999-8aaa-bbbbccccdddd"
WAREHOUSE = "88888888-9999-4aaa-8bbb-ccccddddeeee"
BODY_SCENE = "99999999-aaaa-4bbb-8ccc-ddddeeeeffff"
# summer_letters
NORA = "d1e2f3a4-b5c6-4d7e-8f9a-0b1c2d3e4f5a"
ELI = "e2f3a4b5-c6d7-4e8f-9a0b-1c2d3e4f5a6b"
# court_of_ash
ISOLDE = "ash-isolde"
VARRIC = "ash-varric"
SERA = "ash-sera"
ALDOUS = "ash-aldous"
RHEA = "ash-rhea"
FINN = "ash-finn"
KEEP = "ash-keep"
WOOD = "ash-wood"
CORONATION = "ash-scene-1"

PERSON = ("appearance", "backstory", "extraInfo")
"""Where an open request about a character ("make him scarier") may land."""
PLACE = ("visualDescription", "background", "extraInfo")
"""Where an open request about a location may land."""
AGE_OLD = (
    "old",
    "age",
    "grey",
    "gray",
    "year",
    "elder",
    "wrinkl",
    "white",
    "sixt",
    "sevent",
    "fift",
)
"""Words an "older" text contains one of."""
AGE_YOUNG = ("young", "year", "child", "teen", "boy", "girl", "age", "kid")
"""Words a "younger" text contains one of."""
DARK = ("dark", "grim", "bleak", "somber", "sombre", "ominous", "brooding", "melanch", "gloom")
"""Words a "darker" tone contains one of."""


def _case(case_id: str, scenario: str, message: str, *steps: Step, starter: bool = False) -> Case:
    return Case(case_id, scenario, message, steps, starter=starter)


CASES: tuple[Case, ...] = (
    # --- the chat panel's starter suggestions -------------------------------------------
    _case(
        "starter-conflict-salt", "salt_road", STARTERS[0], Step("explain", "scenario"), starter=True
    ),
    _case(
        "starter-conflict-court",
        "court_of_ash",
        STARTERS[0],
        Step("explain", "scenario"),
        starter=True,
    ),
    _case(
        "starter-depth-salt",
        "salt_road",
        STARTERS[1],
        Step(
            "modify",
            "character",
            "the main character",
            (ARIA,),
            changes=(Edit("characters", ARIA, any_of=PERSON),),
        ),
        starter=True,
    ),
    _case(
        "starter-depth-lantern",
        "lantern_street",
        STARTERS[1],
        Step(
            "modify",
            "character",
            "the main character",
            (JUNE,),
            changes=(Edit("characters", JUNE, any_of=PERSON),),
        ),
        starter=True,
    ),
    _case(
        "starter-twists-salt", "salt_road", STARTERS[2], Step("explain", "scenario"), starter=True
    ),
    _case(
        "starter-twists-summer",
        "summer_letters",
        STARTERS[2],
        Step("explain", "scenario"),
        starter=True,
    ),
    _case(
        "starter-create-salt",
        "salt_road",
        STARTERS[3],
        Step("create", "character", changes=(Add("characters"),)),
        starter=True,
    ),
    _case(
        "starter-create-court",
        "court_of_ash",
        STARTERS[3],
        Step("create", "character", changes=(Add("characters"),)),
        starter=True,
    ),
    # --- create: characters -------------------------------------------------------------
    _case(
        "create-villain-morvane",
        "salt_road",
        "Add a villain character: a jealous court wizard named Morvane.",
        Step("create", "character", changes=(Add("characters", "Morvane", mentions=("wizard",)),)),
    ),
    _case(
        "create-pike",
        "glass_orbit",
        "Add a new character called Pike, a smuggler who owes Idris money",
        Step("create", "character", changes=(Add("characters", "Pike", mentions=("smuggl",)),)),
    ),
    _case(
        "create-rival-celeste",
        "summer_letters",
        "Introduce a rival for Nora - a pastry chef named Celeste who just opened across the "
        "street.",
        Step(
            "create",
            "character",
            changes=(Add("characters", "Celeste", mentions=("pastry", "chef", "bak", "rival")),),
        ),
    ),
    _case(
        "create-captain-dolan",
        "lantern_street",
        "I need a corrupt police captain named Dolan",
        Step(
            "create",
            "character",
            changes=(Add("characters", "Dolan", mentions=("police", "captain", "corrupt", "cop")),),
        ),
    ),
    _case(
        "create-maelis-polite",
        "court_of_ash",
        "Could you create a character named Maelis? She's the court astronomer and secretly "
        "loyal to the river lords.",
        Step(
            "create",
            "character",
            changes=(Add("characters", "Maelis", mentions=("astronom", "star", "river lord")),),
        ),
    ),
    _case(
        "create-unnamed-mechanic",
        "glass_orbit",
        "We need a mechanic on the Meridian, someone grumpy and old.",
        Step(
            "create",
            "character",
            changes=(Add("characters", mentions=("mechanic", "engine", "repair", "grump")),),
        ),
    ),
    _case(
        "create-two-characters",
        "summer_letters",
        "Add two characters: a baker named Jess and a fisherman called Marco.",
        Step("create", "character", changes=(Add("characters", "Jess", mentions=("bak",)),)),
        Step("create", "character", changes=(Add("characters", "Marco", mentions=("fish",)),)),
    ),
    # --- create: locations and scenes ---------------------------------------------------
    _case(
        "create-sunken-library",
        "salt_road",
        "Add a location: the Sunken Library, a flooded archive under the city",
        Step(
            "create",
            "location",
            changes=(
                Add(
                    "locations",
                    "Sunken Library",
                    mentions=("flood", "archive", "water", "book", "librar"),
                ),
            ),
        ),
    ),
    _case(
        "create-rusty-nail",
        "lantern_street",
        "add a new location called the Rusty Nail, a dive bar by the docks",
        Step(
            "create",
            "location",
            changes=(Add("locations", "Rusty Nail", mentions=("bar", "dock", "dive")),),
        ),
    ),
    _case(
        "create-place-unnamed",
        "glass_orbit",
        "Create a new place for the story",
        Step("create", "location", changes=(Add("locations"),)),
    ),
    _case(
        "create-beach-house",
        "summer_letters",
        "Add a beach house where Nora and Eli spend the summer",
        Step("create", "location", changes=(Add("locations", mentions=("beach",)),)),
    ),
    _case(
        "create-scene-pier",
        "salt_road",
        "Add a scene where Aria confronts Bram on the pier",
        Step("create", "scene", changes=(Add("scenes", mentions=("confront", "pier")),)),
    ),
    _case(
        "create-scene-letters",
        "court_of_ash",
        "Write a new scene: Sera is caught reading the queen's letters by Captain Dorn.",
        Step("create", "scene", changes=(Add("scenes", mentions=("letter",)),)),
    ),
    # --- create: whole scenarios and text fields ---------------------------------------
    _case(
        "create-scenario-dragon",
        "empty",
        "Create a new fantasy scenario about a dragon who runs a bakery",
        Step("create", "scenario", changes=(NewScenario(mentions=("dragon",)),)),
    ),
    _case(
        "create-scenario-mars",
        "empty",
        "Write me a story about two astronauts stranded on Mars",
        Step("create", "scenario", changes=(NewScenario(mentions=("mars", "astronaut")),)),
    ),
    _case(
        "create-backstory-world",
        "glass_orbit",
        "Write a backstory for this world",
        Step("modify", "backstory", changes=(SetField("backstory"),)),
    ),
    # --- modify: characters, renames included ------------------------------------------
    _case(
        "rename-mira",
        "salt_road",
        "Rename Mira to Ann",
        Step(
            "modify",
            "character",
            "Mira",
            (MIRA,),
            changes=(Edit("characters", MIRA, {"name": "Ann"}),),
        ),
    ),
    _case(
        "rename-sefa-surname",
        "glass_orbit",
        "Change Sefa's name to Sefa Adeyemi",
        Step(
            "modify",
            "character",
            "Sefa",
            (SEFA,),
            changes=(Edit("characters", SEFA, {"name": "Adeyemi"}),),
        ),
    ),
    _case(
        "rename-by-role",
        "court_of_ash",
        "call the stable boy Tam instead",
        Step(
            "modify",
            "character",
            "the stable boy",
            (FINN,),
            changes=(Edit("characters", FINN, {"name": "Tam"}),),
        ),
    ),
    _case(
        "rename-aria-hero",
        "salt_road",
        "The hero should be called Lyra from now on",
        Step(
            "modify",
            "character",
            "the hero",
            (ARIA,),
            changes=(Edit("characters", ARIA, {"name": "Lyra"}),),
        ),
    ),
    _case(
        "older-walter",
        "lantern_street",
        "Make Walter Finch older",
        Step(
            "modify",
            "character",
            "Walter Finch",
            (WALTER,),
            changes=(Edit("characters", WALTER, any_of=PERSON, mentions=AGE_OLD),),
        ),
    ),
    _case(
        "scar-bram",
        "salt_road",
        "Give Bram a scar across his face",
        Step(
            "modify",
            "character",
            "Bram",
            (BRAM,),
            changes=(Edit("characters", BRAM, any_of=PERSON, mentions=("scar",)),),
        ),
    ),
    _case(
        "mysterious-eli",
        "summer_letters",
        "Eli should be more mysterious",
        Step(
            "modify",
            "character",
            "Eli",
            (ELI,),
            changes=(
                Edit(
                    "characters",
                    ELI,
                    any_of=PERSON,
                    mentions=("myster", "secret", "enigm", "unknown", "hidden", "quiet", "shadow"),
                ),
            ),
        ),
    ),
    _case(
        "role-varric",
        "court_of_ash",
        "Change Lord Varric's role to reluctant ally",
        Step(
            "modify",
            "character",
            "Lord Varric",
            (VARRIC,),
            changes=(Edit("characters", VARRIC, {"role": "ally"}),),
        ),
    ),
    _case(
        "menacing-hale",
        "glass_orbit",
        "Make Commander Hale more menacing",
        Step(
            "modify",
            "character",
            "Commander Hale",
            (HALE,),
            changes=(
                Edit(
                    "characters",
                    HALE,
                    any_of=PERSON,
                    mentions=(
                        "menac",
                        "threat",
                        "cold",
                        "cruel",
                        "danger",
                        "fear",
                        "ruthless",
                        "sinister",
                        "intimidat",
                    ),
                ),
            ),
        ),
    ),
    _case(
        "backstory-june",
        "lantern_street",
        "Rewrite June's backstory: she was a war photographer before she joined the police.",
        Step(
            "modify",
            "character",
            "June",
            (JUNE,),
            changes=(Edit("characters", JUNE, any_of=("backstory",), mentions=("photograph",)),),
        ),
    ),
    _case(
        "hair-aria",
        "salt_road",
        "Aria should have short black hair instead",
        Step(
            "modify",
            "character",
            "Aria",
            (ARIA,),
            changes=(Edit("characters", ARIA, any_of=("appearance",), mentions=("black",)),),
        ),
    ),
    _case(
        "younger-two",
        "court_of_ash",
        "Make Sera and Finn a few years younger",
        Step(
            "modify",
            "character",
            "Sera and Finn",
            (SERA, FINN),
            changes=(
                Edit("characters", SERA, any_of=PERSON, mentions=AGE_YOUNG),
                Edit("characters", FINN, any_of=PERSON, mentions=AGE_YOUNG),
            ),
        ),
    ),
    _case(
        "gender-juno",
        "glass_orbit",
        "Set Juno's gender to female",
        Step(
            "modify",
            "character",
            "Juno",
            (JUNO,),
            changes=(Edit("characters", JUNO, {"gender": "female"}),),
        ),
    ),
    _case(
        "alias-tobin",
        "salt_road",
        "give tobin the nickname Ferry",
        Step(
            "modify",
            "character",
            "tobin",
            (TOBIN,),
            changes=(Edit("characters", TOBIN, {"alias": "Ferry"}),),
        ),
    ),
    # --- modify: locations and scenes ---------------------------------------------------
    _case(
        "darker-port",
        "salt_road",
        "Make Port Veil darker and more dangerous",
        Step(
            "modify",
            "location",
            "Port Veil",
            (PORT,),
            changes=(
                Edit(
                    "locations",
                    PORT,
                    any_of=PLACE,
                    mentions=(
                        "dark",
                        "danger",
                        "shadow",
                        "grim",
                        "crime",
                        "violen",
                        "dead",
                        "murder",
                    ),
                ),
            ),
        ),
    ),
    _case(
        "rename-heron",
        "lantern_street",
        "Rename the Blue Heron Club to the Velvet Room",
        Step(
            "modify",
            "location",
            "the Blue Heron Club",
            (HERON,),
            changes=(Edit("locations", HERON, {"name": "Velvet Room"}),),
        ),
    ),
    _case(
        "ruin-wood",
        "court_of_ash",
        "Change the Whispering Wood so it's a burned ruin after the war",
        Step(
            "modify",
            "location",
            "the Whispering Wood",
            (WOOD,),
            changes=(
                Edit(
                    "locations",
                    WOOD,
                    any_of=PLACE,
                    mentions=("ruin", "burn", "ash", "char", "scorch", "fire"),
                ),
            ),
        ),
    ),
    _case(
        "lab-kepler",
        "glass_orbit",
        "Give Kepler Station a hidden lab",
        Step(
            "modify",
            "location",
            "Kepler Station",
            (KEPLER,),
            changes=(Edit("locations", KEPLER, any_of=PLACE, mentions=("lab",)),),
        ),
    ),
    _case(
        "night-arrival",
        "salt_road",
        "Move the arrival scene to night",
        Step(
            "modify",
            "scene",
            "the arrival scene",
            (ARRIVAL,),
            changes=(Edit("scenes", ARRIVAL, any_of=("time", "description")),),
        ),
    ),
    _case(
        "retitle-coronation",
        "court_of_ash",
        "Rename the scene 'The Coronation' to 'The False Crown'",
        Step(
            "modify",
            "scene",
            "The Coronation",
            (CORONATION,),
            changes=(Edit("scenes", CORONATION, {"title": "The False Crown"}),),
        ),
    ),
    # --- modify: top-level fields -------------------------------------------------------
    _case(
        "title-salt-crown",
        "salt_road",
        "Change the title to The Salt Crown",
        Step("modify", "title", changes=(SetField("title", "The Salt Crown"),)),
    ),
    _case(
        "tone-darker",
        "glass_orbit",
        "Make the tone darker",
        Step(
            "modify",
            "writingStyle",
            changes=(SetField("writingStyle", keys=("tone",), mentions=DARK),),
        ),
    ),
    _case(
        "genre-romcom",
        "summer_letters",
        "Change the genre to romantic comedy",
        Step(
            "modify",
            "writingStyle",
            changes=(SetField("writingStyle", "romantic comedy", ("genre",)),),
        ),
    ),
    _case(
        "first-person",
        "lantern_street",
        "Write it in first person, present tense",
        Step(
            "modify",
            "writingStyle",
            changes=(SetField("writingStyle", "first person", ("style",)),),
        ),
    ),
    _case(
        "spanish",
        "lantern_street",
        "The story should be written in Spanish",
        Step(
            "modify", "writingStyle", changes=(SetField("writingStyle", "spanish", ("language",)),)
        ),
    ),
    _case(
        "backstory-poison",
        "court_of_ash",
        "Rewrite the backstory so the old king was poisoned",
        Step("modify", "backstory", changes=(SetField("backstory", mentions=("poison",)),)),
    ),
    _case(
        "happier-ending",
        "salt_road",
        "Make the ending of the story arc happier",
        Step(
            "modify",
            "storyarc",
            changes=(
                SetField(
                    "storyarc",
                    mentions=(
                        "happ",
                        "joy",
                        "hope",
                        "reunit",
                        "peace",
                        "celebrat",
                        "smil",
                        "together",
                        "surviv",
                        "free",
                        "love",
                    ),
                ),
            ),
        ),
    ),
    _case(
        "note-chapters",
        "summer_letters",
        "Add a note: keep each chapter under 2,000 words",
        Step("modify", "notes", changes=(SetField("notes", "2,000 words"),)),
    ),
    _case(
        "improve-synopsis",
        "glass_orbit",
        "Improve the synopsis",
        Step("modify", "synopsis", changes=(SetField("synopsis"),)),
    ),
    # --- delete -------------------------------------------------------------------------
    _case(
        "delete-tavern",
        "salt_road",
        "Delete the tavern",
        Step(
            "delete", "location", "the tavern", (LANTERN,), changes=(Remove("locations", LANTERN),)
        ),
    ),
    _case(
        "remove-aldous",
        "court_of_ash",
        "Remove Brother Aldous from the story",
        Step(
            "delete",
            "character",
            "Brother Aldous",
            (ALDOUS,),
            changes=(Remove("characters", ALDOUS),),
        ),
    ),
    _case(
        "get-rid-dunes",
        "glass_orbit",
        "Get rid of the Red Dunes location, we never go there",
        Step(
            "delete", "location", "the Red Dunes", (DUNES,), changes=(Remove("locations", DUNES),)
        ),
    ),
    _case(
        "delete-warehouse-scene",
        "lantern_street",
        "Delete the warehouse scene",
        Step(
            "delete",
            "scene",
            "the warehouse scene",
            (BODY_SCENE,),
            changes=(Remove("scenes", BODY_SCENE),),
        ),
    ),
    # --- explain ------------------------------------------------------------------------
    _case("who-bram", "salt_road", "Who is Bram?", Step("explain", "character", "Bram", (BRAM,))),
    _case(
        "sera-backstory",
        "court_of_ash",
        "What is Sera's backstory?",
        Step("explain", "character", "Sera", (SERA,)),
    ),
    _case(
        "about-kepler",
        "glass_orbit",
        "Tell me about Kepler Station",
        Step("explain", "location", "Kepler Station", (KEPLER,)),
    ),
    _case("summarize", "lantern_street", "Summarize the story so far", Step("explain", "scenario")),
    _case(
        "weak-points",
        "summer_letters",
        "What are the weak points of my plot?",
        Step("explain", "scenario"),
    ),
    _case(
        "gripping-arc",
        "court_of_ash",
        "How could the story arc be more gripping?",
        Step("explain", "storyarc"),
    ),
    _case(
        "precinct-role",
        "lantern_street",
        "what role does precinct 9 play in the story?",
        Step("explain", "location", "precinct 9", (PRECINCT,)),
    ),
    # --- chat ---------------------------------------------------------------------------
    _case("hello", "salt_road", "Hello! What can you help me with?", Step("chat", "general")),
    _case("thanks", "court_of_ash", "Thanks, that's perfect!", Step("chat", "general")),
    _case(
        "dialogue-advice",
        "summer_letters",
        "How do I write better dialogue?",
        Step("chat", "general"),
    ),
    _case(
        "short-story-length",
        "empty",
        "What's a good length for a short story?",
        Step("chat", "general"),
    ),
    # --- clarify: ambiguous references and entities that do not exist --------------------
    _case(
        "clarify-her",
        "salt_road",
        "Change her name to Ann",
        Step("clarify", "character", "her", (ARIA, MIRA), asked="modify"),
    ),
    _case(
        "clarify-him",
        "court_of_ash",
        "Make him taller",
        Step("clarify", "character", "him", (VARRIC, ALDOUS, FINN), asked="modify"),
    ),
    _case(
        "clarify-which-character",
        "glass_orbit",
        "Delete the character",
        Step("clarify", "character", None, (IDRIS, SEFA, JUNO, HALE), asked="delete"),
    ),
    _case(
        "clarify-which-location",
        "lantern_street",
        "Rename the location to The Office",
        Step("clarify", "location", None, (HERON, PRECINCT, WAREHOUSE), asked="modify"),
    ),
    _case(
        "missing-zoltan",
        "salt_road",
        "Make Zoltan older",
        Step("clarify", "character", "Zoltan", asked="modify"),
    ),
    _case(
        "missing-morwen",
        "court_of_ash",
        "Who is Lady Morwen?",
        Step("clarify", "character", "Lady Morwen", asked="explain"),
    ),
    # --- vague requests: complaints and wishes without a command verb -------------------
    _case(
        "vague-villain-flat",
        "salt_road",
        "The villain feels flat",
        Step(
            "modify",
            "character",
            "the villain",
            (BRAM,),
            changes=(Edit("characters", BRAM, any_of=PERSON),),
        ),
    ),
    _case(
        "vague-mira-passive",
        "salt_road",
        "Mira feels too passive",
        Step(
            "modify",
            "character",
            "Mira",
            (MIRA,),
            changes=(Edit("characters", MIRA, any_of=PERSON),),
        ),
    ),
    _case(
        "vague-lou-secret",
        "lantern_street",
        "Lou Harper needs a secret that June doesn't know about",
        Step(
            "modify",
            "character",
            "Lou Harper",
            (LOU,),
            changes=(Edit("characters", LOU, any_of=PERSON, mentions=("secret",)),),
        ),
    ),
    _case(
        "vague-dialogue-stiff",
        "court_of_ash",
        "The dialogue is too stiff",
        Step(
            "modify",
            "writingStyle",
            changes=(SetField("writingStyle", keys=("communicationStyle", "other")),),
        ),
    ),
    _case(
        "vague-tighten-synopsis",
        "glass_orbit",
        "It's too long-winded, tighten the synopsis",
        Step("modify", "synopsis", changes=(SetField("synopsis"),)),
    ),
    _case(
        "vague-tavern-boring",
        "salt_road",
        "Honestly the tavern is boring",
        Step(
            "modify",
            "location",
            "the tavern",
            (LANTERN,),
            changes=(Edit("locations", LANTERN, any_of=PLACE),),
        ),
    ),
    # --- several operations in one message -----------------------------------------------
    _case(
        "multi-rename-add",
        "salt_road",
        "Rename Mira to Ann and add a tavern called The Tide and Tallow",
        Step(
            "modify",
            "character",
            "Mira",
            (MIRA,),
            clause="Rename Mira to Ann",
            changes=(Edit("characters", MIRA, {"name": "Ann"}),),
        ),
        Step(
            "create",
            "location",
            clause="add a tavern called The Tide and Tallow",
            changes=(Add("locations", "Tide and Tallow"),),
        ),
    ),
    _case(
        "multi-delete-modify",
        "court_of_ash",
        "Delete Finn and make Sera older",
        Step(
            "delete",
            "character",
            "Finn",
            (FINN,),
            clause="Delete Finn",
            changes=(Remove("characters", FINN),),
        ),
        Step(
            "modify",
            "character",
            "Sera",
            (SERA,),
            clause="make Sera older",
            changes=(Edit("characters", SERA, any_of=PERSON, mentions=AGE_OLD),),
        ),
    ),
    _case(
        "multi-title-tone",
        "summer_letters",
        "Change the title to Letters from Maine, then make the tone more bittersweet.",
        Step(
            "modify",
            "title",
            clause="Change the title to Letters from Maine",
            changes=(SetField("title", "Letters from Maine"),),
        ),
        Step(
            "modify",
            "writingStyle",
            clause="make the tone more bittersweet",
            changes=(SetField("writingStyle", keys=("tone",), mentions=("bitter",)),),
        ),
    ),
)
"""The dev set (one turn each)."""
