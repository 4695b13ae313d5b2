"""Words the request parser and the entity resolver know, grouped by what they signal.

Plain English of story editing, not of any test scenario: verbs of creating, changing,
deleting and asking; nouns that name a kind of entity (people, places, scenes) or a
scenario field; attribute words that tell which field of an entity a change is about.
Everything is lower case; multi-word entries are matched as word sequences.
"""

from __future__ import annotations

__all__ = [
    "APPEARANCE_WORDS",
    "BACKSTORY_WORDS",
    "CHARACTER_FIELD_NOUNS",
    "CHARACTER_KIND",
    "CHAT_OPENERS",
    "CREATE_VERBS",
    "DELETE_VERBS",
    "EXPLAIN_VERBS",
    "FAULT_WORDS",
    "FILLERS",
    "GENRES",
    "LANGUAGES",
    "LOCATION_FIELD_NOUNS",
    "LOCATION_KIND",
    "MEANINGS",
    "MODIFY_VERBS",
    "NUMBERS",
    "PERSONALITY_WORDS",
    "PERSON_NOUNS",
    "PLACE_NOUNS",
    "QUESTION_WORDS",
    "ROLE_SYNONYMS",
    "ROLE_WORDS",
    "SCENARIO_NOUNS",
    "SCENE_FIELD_NOUNS",
    "SCENE_KIND",
    "STOPWORDS",
    "STYLE_NOUNS",
    "TEXT_FIELD_NOUNS",
    "TIME_WORDS",
    "TONE_WORDS",
]

STOPWORDS = frozenset(
    {
        "a", "an", "the", "of", "in", "on", "at", "to", "for", "from", "with", "and", "or",
        "by", "as", "is", "are", "be", "it", "its", "this", "that", "my", "our", "your",
        "me", "us", "we", "i", "you", "so", "who", "which", "where", "when", "what", "into",
        "about", "there", "their", "them", "they", "one", "some", "more", "new", "story",
        "scenario", "please", "just", "also", "now", "then", "all", "every", "each",
    }
)  # fmt: skip
"""Words that never identify an entity on their own."""

FILLERS = (
    "instead",
    "from now on",
    "please",
    "for me",
    "thanks",
    "thank you",
    "if you can",
    "if possible",
)
"""Trailing words that are not part of a value ("call him Tam instead")."""

CREATE_VERBS = frozenset(
    {
        "add", "create", "introduce", "invent", "insert", "include", "generate", "design",
        "build", "make", "write", "draft", "new", "establish", "bring", "set up", "come up with",
        "make up", "put in", "throw in", "dream up", "start", "begin", "conjure",
    }
)  # fmt: skip
"""Verbs that can start a creation (``make`` and ``write`` only with a new thing)."""

DELETE_VERBS = frozenset(
    {
        "delete", "remove", "erase", "drop", "cut", "eliminate", "scrap", "ditch", "discard",
        "get rid of", "take out", "throw out", "strike", "lose",
    }
)  # fmt: skip

MODIFY_VERBS = frozenset(
    {
        "change", "make", "set", "update", "edit", "rewrite", "revise", "improve", "modify",
        "adjust", "tweak", "alter", "expand", "extend", "deepen", "develop", "flesh out",
        "enrich", "give", "turn", "switch", "swap", "shorten", "simplify", "lengthen",
        "polish", "fix", "redo", "refine", "rework", "redesign", "rename", "retitle", "call",
        "name", "move", "age", "darken", "brighten", "rephrase", "reword", "correct",
        "replace", "let", "put", "transform", "convert", "write", "tighten", "trim",
        "condense", "streamline", "sharpen", "intensify", "soften", "punch up", "spice up",
        "liven up", "tone down", "clean up", "beef up", "shake up", "vary",
    }
)  # fmt: skip

EXPLAIN_VERBS = frozenset(
    {
        "explain", "describe", "summarize", "summarise", "analyze", "analyse", "tell",
        "list", "show", "suggest", "brainstorm", "propose", "recommend", "critique",
        "review", "evaluate", "outline", "compare", "assess", "recap", "remind", "discuss",
        "clarify", "name", "identify", "give me", "help me", "walk me through", "think of",
        "pitch", "find", "check", "point out",
    }
)  # fmt: skip
"""Verbs of a request for an answer in prose, about the scenario or not."""

QUESTION_WORDS = frozenset(
    {
        "who", "what", "what's", "whats", "why", "how", "where", "when", "which", "whose",
        "is", "are", "does", "do", "did", "can", "could", "should", "would", "will", "was",
        "were", "has", "have", "any", "who's", "how's", "isn't", "aren't", "doesn't",
    }
)  # fmt: skip

CHAT_OPENERS = frozenset(
    {
        "hi", "hello", "hey", "howdy", "yo", "greetings", "thanks", "thank", "thx", "ty",
        "cheers", "great", "perfect", "awesome", "nice", "cool", "ok", "okay", "good",
        "wonderful", "lovely", "excellent", "amazing", "brilliant", "bye", "goodbye",
        "sorry", "oops", "lol", "haha", "wow", "yes", "no", "sure", "fine", "morning",
        "evening", "afternoon",
    }
)  # fmt: skip
"""First words of a message that is conversation, not a request."""

CHARACTER_KIND = frozenset(
    {
        "character", "characters", "person", "people", "cast", "npc", "npcs", "someone",
        "somebody", "figure", "individual", "cast member",
    }
)  # fmt: skip
LOCATION_KIND = frozenset({"location", "locations", "place", "places", "setting", "settings"})
SCENE_KIND = frozenset({"scene", "scenes"})
SCENARIO_NOUNS = frozenset(
    {"scenario", "story", "stories", "tale", "novel", "book", "plot", "premise", "saga"}
)

PERSON_NOUNS = frozenset(
    {
        "villain", "hero", "heroine", "sidekick", "mentor", "rival", "ally", "friend",
        "enemy", "companion", "love interest", "lover", "partner", "spouse", "husband",
        "wife", "boyfriend", "girlfriend", "mother", "father", "mom", "dad", "parent",
        "sister", "brother", "sibling", "son", "daughter", "child", "kid", "aunt", "uncle",
        "cousin", "grandmother", "grandfather", "twin", "king", "queen", "prince",
        "princess", "lord", "lady", "duke", "duchess", "knight", "squire", "soldier",
        "guard", "captain", "commander", "general", "officer", "sergeant", "detective",
        "cop", "police", "inspector", "agent", "spy", "assassin", "thief", "rogue",
        "smuggler", "pirate", "bandit", "mercenary", "hunter", "wizard", "witch", "mage",
        "sorcerer", "sorceress", "priest", "priestess", "monk", "nun", "healer", "doctor",
        "nurse", "scientist", "engineer", "mechanic", "pilot", "sailor", "fisherman",
        "fisher", "farmer", "merchant", "trader", "shopkeeper", "innkeeper", "bartender",
        "barkeep", "baker", "cook", "chef", "blacksmith", "smith", "carpenter", "servant",
        "maid", "butler", "teacher", "student", "professor", "scholar", "librarian",
        "musician", "singer", "bard", "artist", "painter", "writer", "poet", "journalist",
        "reporter", "lawyer", "judge", "politician", "senator", "mayor", "boss",
        "colleague", "neighbor", "neighbour", "stranger", "traveler", "traveller",
        "courier", "messenger", "guide", "ranger", "scout", "warrior", "fighter",
        "archer", "gunslinger", "sheriff", "outlaw", "robot", "android", "ai", "alien",
        "creature", "monster", "dragon", "ghost", "spirit", "vampire", "werewolf", "god",
        "goddess", "demon", "angel", "elf", "dwarf", "orc", "goblin", "giant", "fairy",
        "man", "woman", "boy", "girl", "guy", "gentleman", "old man", "old woman", "widow",
        "widower", "orphan", "apprentice", "informant", "suspect", "witness",
        "victim", "killer", "murderer", "henchman", "minion", "bodyguard", "advisor",
        "adviser", "counselor", "councillor", "minister", "chancellor", "emperor",
        "empress", "regent", "heir", "noble", "nobleman", "peasant", "beggar", "hermit",
        "ferryman", "keeper", "astronomer", "alchemist", "cartographer", "navigator",
        "crew member", "crewmate", "stable boy", "stablehand", "cultist",
        "leader", "rebel", "outcast", "pet", "dog", "cat", "horse", "familiar",
        "protagonist", "antagonist", "confidant", "confidante", "narrator",
    }
)  # fmt: skip
"""Nouns that name a kind of person: "add a smuggler" adds a character."""

PLACE_NOUNS = frozenset(
    {
        "tavern", "inn", "pub", "bar", "club", "cafe", "café", "restaurant", "bakery",
        "shop", "store", "market", "marketplace", "bazaar", "castle", "palace", "keep",
        "fortress", "fort", "tower", "citadel", "temple", "church", "cathedral", "chapel",
        "monastery", "abbey", "shrine", "library", "archive", "school", "academy",
        "university", "college", "hospital", "prison", "jail", "dungeon", "cell",
        "station", "precinct", "office", "headquarters", "base", "camp", "outpost",
        "harbour", "harbor", "port", "dock", "docks", "pier", "wharf", "lighthouse",
        "beach", "coast", "shore", "island", "bay", "sea", "ocean", "lake", "river",
        "bridge", "forest", "wood", "woods", "jungle", "swamp", "marsh", "desert",
        "mountain", "mountains", "hill", "valley", "cave", "cavern", "mine", "canyon",
        "field", "meadow", "farm", "ranch", "garden", "park", "city", "town", "village",
        "hamlet", "capital", "district", "quarter", "street", "alley", "square",
        "plaza", "neighborhood", "neighbourhood", "house", "home", "mansion", "manor",
        "estate", "cottage", "cabin", "hut", "apartment", "flat", "room", "hall",
        "ballroom", "kitchen", "cellar", "basement", "attic", "warehouse", "factory",
        "workshop", "forge", "smithy", "lab", "laboratory", "ship", "boat", "starship",
        "spaceship", "planet", "moon", "world", "realm", "kingdom", "empire",
        "ruins", "ruin", "tomb", "crypt", "graveyard", "cemetery", "arena", "stadium",
        "theater", "theatre", "museum", "gallery", "hotel", "motel", "hideout", "lair",
        "den", "nest", "well", "gate", "wall", "road", "path", "crossroads", "border",
        "colony", "settlement", "oasis", "glade", "grove", "spring",
        "waterfall", "observatory", "stables", "stable", "barracks", "court", "courtyard",
        "throne room", "beach house", "safe house", "hideaway", "retreat", "resort",
        "cove", "cliff", "cliffs", "peak", "summit", "ridge", "plains", "steppe", "glacier",
        "volcano", "reef", "lagoon", "canal", "sewer", "sewers", "tunnel", "tunnels",
        "catacombs", "vault", "bank", "mill", "windmill", "orchard", "vineyard", "embassy",
        "courthouse", "town hall", "barn", "shed", "garage", "diner", "casino",
        "nightclub", "spa", "gym", "dojo", "arcade", "mall", "subway", "train station",
        "airport", "hangar", "bunker", "clinic", "asylum", "orphanage", "villa", "chalet",
        "lodge", "hostel", "farmhouse", "penthouse", "loft", "studio", "bookshop",
        "bookstore", "teahouse", "brewery", "distillery", "stall", "tent", "caravan",
        "cockpit", "engine room", "cargo hold", "quarters", "space station", "metropolis",
        "outskirts", "slums",
    }
)  # fmt: skip
"""Nouns that name a kind of place: "add a tavern" adds a location."""

ROLE_WORDS = (
    "supporting",
    "main",
    "minor",
    "side",
    "secondary",
    "background",
    "recurring",
    "villain",
    "antagonist",
    "protagonist",
    "hero",
    "heroine",
    "sidekick",
    "mentor",
    "rival",
    "love interest",
    "ally",
    "comic relief",
    "foil",
    "narrator",
    "henchman",
    "confidant",
)
"""Words of a request that state a new character's role ("a new supporting character")."""

ROLE_SYNONYMS = {
    "hero": "protagonist",
    "heroine": "protagonist",
    "main character": "protagonist",
    "lead character": "protagonist",
    "main hero": "protagonist",
    "villain": "antagonist",
    "baddie": "antagonist",
    "bad guy": "antagonist",
    "enemy": "antagonist",
}
"""How writers name roles in requests -> how editors store them."""

TEXT_FIELD_NOUNS = {
    "title": "title",
    "name of the story": "title",
    "synopsis": "synopsis",
    "summary": "synopsis",
    "blurb": "synopsis",
    "logline": "synopsis",
    "pitch": "synopsis",
    "story arc": "storyarc",
    "storyarc": "storyarc",
    "arc": "storyarc",
    "plot": "storyarc",
    "storyline": "storyarc",
    "ending": "storyarc",
    "beginning": "storyarc",
    "climax": "storyarc",
    "structure": "storyarc",
    "outline": "storyarc",
    "backstory": "backstory",
    "back story": "backstory",
    "background story": "backstory",
    "lore": "backstory",
    "history": "backstory",
    "world": "backstory",
    "worldbuilding": "backstory",
    "world building": "backstory",
    "setting": "backstory",
    "notes": "notes",
    "note": "notes",
}
"""Scenario fields named in requests -> the field."""

STYLE_NOUNS = {
    "writing style": "style",
    "style": "style",
    "point of view": "style",
    "pov": "style",
    "perspective": "style",
    "narration": "style",
    "narrator": "style",
    "tense": "style",
    "person": "style",
    "voice": "style",
    "prose": "style",
    "genre": "genre",
    "tone": "tone",
    "mood": "tone",
    "atmosphere": "tone",
    "feel": "tone",
    "dialogue": "communicationStyle",
    "dialog": "communicationStyle",
    "communication style": "communicationStyle",
    "theme": "theme",
    "themes": "theme",
    "message": "theme",
    "language": "language",
}
"""Writing-style keys named in requests -> the ``writingStyle`` key."""

CHARACTER_FIELD_NOUNS = {
    "name": "name",
    "first name": "name",
    "full name": "name",
    "nickname": "alias",
    "nick name": "alias",
    "alias": "alias",
    "codename": "alias",
    "code name": "alias",
    "role": "role",
    "job": "role",
    "gender": "gender",
    "sex": "gender",
    "appearance": "appearance",
    "look": "appearance",
    "looks": "appearance",
    "description": "appearance",
    "backstory": "backstory",
    "back story": "backstory",
    "history": "backstory",
    "past": "backstory",
    "notes": "extraInfo",
    "extra info": "extraInfo",
    "personality": "extraInfo",
}
LOCATION_FIELD_NOUNS = {
    "name": "name",
    "description": "visualDescription",
    "visual description": "visualDescription",
    "look": "visualDescription",
    "looks": "visualDescription",
    "appearance": "visualDescription",
    "background": "background",
    "history": "background",
    "backstory": "background",
    "past": "background",
    "notes": "extraInfo",
    "extra info": "extraInfo",
}
SCENE_FIELD_NOUNS = {
    "title": "title",
    "name": "title",
    "description": "description",
    "summary": "description",
    "time": "time",
    "timing": "time",
    "location": "location",
    "place": "location",
    "setting": "location",
    "notes": "notes",
}

APPEARANCE_WORDS = frozenset(
    {
        "appearance", "look", "looks", "looking", "hair", "haired", "eyes", "eyed", "face",
        "taller", "shorter", "tall", "short", "older", "younger", "old", "young", "age",
        "aged", "scar", "scars", "scarred", "tattoo", "tattoos", "beard", "bearded",
        "moustache", "mustache", "clothes", "clothing", "outfit", "dress", "wears",
        "wear", "wearing", "coat", "cloak", "armor", "armour", "uniform", "build",
        "skin", "height", "thin", "thinner", "fat", "heavier", "muscular", "stronger",
        "weaker", "beautiful", "prettier", "handsome", "ugly", "attractive",
        "eyepatch", "limp", "glasses", "spectacles", "wrinkles", "wrinkled", "bald",
        "grey", "gray", "blonde", "blond", "redhead", "freckles", "voice", "smile",
        "teeth", "hands", "wings", "horns", "tail", "hat", "jewelry", "jewellery", "ring",
        "necklace", "mask", "years", "darker", "brighter", "bigger", "smaller", "larger",
        "creepier", "gloomier", "lighting", "light", "fog", "foggy", "ruin",
        "ruins", "burned", "burnt", "ruined", "crumbling", "abandoned", "decor", "smell",
        "sounds", "weather", "colour", "color", "colors", "colours",
    }
)  # fmt: skip
"""Words of a change that is about how an entity looks (appearance / visualDescription)."""

BACKSTORY_WORDS = frozenset(
    {
        "backstory", "back", "history", "past", "childhood", "origin", "origins",
        "upbringing", "family", "parents", "grew", "raised", "born", "before", "used",
        "former", "formerly", "depth", "deeper", "deep", "flesh", "develop", "developed",
        "complex", "complexity", "layered", "nuanced", "nuance", "interesting", "richer",
        "motivation", "motivations", "motive", "motives", "secret", "secrets", "tragic",
        "trauma", "founded", "built", "legend", "legends", "significance",
    }
)  # fmt: skip
"""Words of a change that is about an entity's history (backstory / background)."""

PERSONALITY_WORDS = frozenset(
    {
        "personality", "trait", "traits", "habit", "habits", "quirk", "quirks", "likes",
        "dislikes", "hobby", "hobbies", "fear", "fears", "skill", "skills", "ability",
        "abilities", "power", "powers", "weakness", "weaknesses", "temper", "attitude",
        "behaviour", "behavior", "manner", "manners", "speech", "kinder", "meaner",
        "braver", "funnier", "smarter", "wiser", "nicer", "sarcastic", "cheerful",
        "grumpy", "shy", "arrogant", "loyal", "likeable", "likable", "mysterious",
        "menacing", "scarier", "dangerous", "evil", "friendlier", "colder", "warmer",
    }
)  # fmt: skip
"""Words of a change that is about who a character is (extraInfo)."""

TIME_WORDS = frozenset(
    {
        "night", "nighttime", "midnight", "dawn", "sunrise", "morning", "noon", "midday",
        "afternoon", "dusk", "sunset", "evening", "twilight", "day", "daytime", "winter",
        "spring", "summer", "autumn", "fall", "yesterday", "tomorrow", "later", "earlier",
    }
)  # fmt: skip

GENRES = frozenset(
    {
        "fantasy", "science fiction", "sci-fi", "scifi", "horror", "thriller", "mystery",
        "romance", "comedy", "romantic comedy", "rom-com", "romcom", "drama", "tragedy",
        "western", "noir", "crime", "adventure", "historical fiction", "dystopia",
        "dystopian", "cyberpunk", "steampunk", "fairy tale", "fable", "satire", "epic",
        "literary fiction", "young adult", "children's", "action", "war", "spy",
        "detective", "gothic", "space opera", "urban fantasy", "dark fantasy",
    }
)  # fmt: skip

LANGUAGES = frozenset(
    {
        "english", "german", "french", "spanish", "italian", "portuguese", "dutch",
        "swedish", "norwegian", "danish", "finnish", "polish", "czech", "russian",
        "ukrainian", "greek", "turkish", "arabic", "hebrew", "hindi", "bengali", "urdu",
        "chinese", "mandarin", "cantonese", "japanese", "korean", "vietnamese", "thai",
        "indonesian", "malay", "swahili", "latin", "esperanto", "catalan", "romanian",
        "hungarian", "irish", "welsh", "icelandic",
    }
)  # fmt: skip

NUMBERS = {"two": 2, "three": 3, "four": 4, "2": 2, "3": 3, "4": 4, "a couple of": 2, "a few": 3}

TONE_WORDS = frozenset(
    {
        "dark", "darker", "light", "lighter", "funny", "funnier", "scary", "scarier", "sad",
        "sadder", "happy", "happier", "grim", "grimmer", "bleak", "bleaker", "warm",
        "warmer", "cold", "colder", "creepy", "creepier", "gloomy", "gloomier", "cozy",
        "cozier", "cosy", "cosier", "serious", "hopeful", "romantic", "playful", "whimsical",
        "melancholic", "melancholy", "tense", "suspenseful", "dramatic", "upbeat",
        "cheerful", "ominous", "edgy", "edgier", "soft", "softer", "lighthearted",
        "bittersweet", "hopeless", "eerie", "moody", "gritty", "grittier", "tragic",
        "comic", "humorous", "silly", "sillier", "mature", "intense",
    }
)  # fmt: skip
"""Adjectives that, said of the whole story, are about its tone ("make it darker")."""

FAULT_WORDS = frozenset(
    {
        "flat", "boring", "dull", "bland", "passive", "weak", "shallow", "stiff", "wooden",
        "clunky", "generic", "cliche", "cliché", "cliched", "clichéd", "predictable",
        "confusing", "unclear", "rushed", "slow", "long-winded", "wordy", "thin", "vague",
        "forgettable", "unconvincing", "unbelievable", "unrealistic", "one-dimensional",
        "cartoonish", "annoying", "unlikeable", "unlikable", "inconsistent", "messy",
        "lifeless", "empty", "plain", "stale", "tired", "overdone", "cheesy",
        "melodramatic", "awkward", "stilted", "robotic", "forced", "off", "lacking",
        "underdeveloped", "undeveloped", "uninteresting", "meh", "lame", "bad", "wrong",
        "broken", "dry", "unfocused", "bloated", "repetitive", "samey", "sterile",
    }
)  # fmt: skip
"""Words of a complaint: "the villain feels flat" asks for the villain to change."""

MEANINGS: dict[str, frozenset[str]] = {
    "old": frozenset({"old", "age", "aged", "grey", "gray", "elder", "wrinkl", "white-hair",
                      "year", "sixt", "sevent", "eight", "fift", "weather", "stoop"}),
    "young": frozenset({"young", "youth", "teen", "child", "boy", "girl", "year", "kid"}),
    "dark": frozenset({"dark", "shadow", "grim", "gloom", "black", "sinister", "ominous",
                       "bleak", "night", "menac", "danger", "brood"}),
    "danger": frozenset({"danger", "deadl", "threat", "violen", "crime", "murder", "risk",
                         "knife", "blood", "gang"}),
    "happ": frozenset({"happ", "joy", "hope", "cheer", "smil", "laugh", "celebrat", "reunit",
                       "peace", "together", "warm", "free", "love"}),
    "menac": frozenset({"menac", "threat", "fear", "dread", "sinister", "cruel", "cold",
                        "danger", "ruthless", "intimidat"}),
    "scar": frozenset({"scar", "terrif", "fear", "dread", "horror", "creep"}),
    "mysteri": frozenset({"myster", "secret", "enigm", "hidden", "unknown", "shadow",
                          "quiet", "strange", "riddl"}),
    "sad": frozenset({"sad", "grief", "sorrow", "tear", "melanch", "loss", "mourn"}),
    "funn": frozenset({"funny", "humor", "humour", "joke", "laugh", "wit", "comic"}),
    "tall": frozenset({"tall", "tower", "height", "long-legged", "lanky"}),
    "bitter": frozenset({"bitter", "melanch", "wistful", "sad", "regret"}),
    "burn": frozenset({"burn", "ash", "char", "scorch", "fire", "ember", "smok", "ruin"}),
}  # fmt: skip
"""Stems of a request's words -> stems a text that carries them out may use instead
("make her older" is done by "her hair has gone grey")."""
