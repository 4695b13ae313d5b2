"""The scenarios of the agent evaluation: what StoryWriter's editor really sends.

Each is shaped like a writer's saved scenario (contract.md 8.5): 2-6 characters, locations,
scenes that name them, backstory, story arc, writing style, notes, base64 photos, legacy
ids next to UUIDs, and keys this service does not know at every level (the editor's own
experiments), which a scenario update must hand back untouched. ``scenario(name)`` returns
a fresh deep copy, so a case can never leak a change into the next one.
"""

from __future__ import annotations

import base64
import copy
import hashlib
from typing import Any

__all__ = ["SCENARIOS", "scenario"]


def _photo(seed: str, size: int = 3000) -> str:
    """Return base64 text of ``size`` bytes that looks like an image payload."""
    digest = b""
    block = seed.encode()
    while len(digest) < size:
        block = hashlib.sha256(block).digest()
        digest += block
    return base64.b64encode(b"\x89PNG\r\n\x1a\n" + digest[:size]).decode()


SALT_ROAD: dict[str, Any] = {
    "id": "8d3c1f2e-4b5a-4c6d-9e7f-0a1b2c3d4e5f",
    "userId": "writer-7",
    "title": "The Salt Road",
    "synopsis": (
        "A courier carries a sealed map across a drowned empire while the harbour guilds "
        "hunt her for it."
    ),
    "createdAt": "2024-05-01T10:00:00Z",
    "updatedAt": "2024-06-12T18:22:41Z",
    "writingStyle": {
        "style": "third person, past tense",
        "genre": "fantasy",
        "tone": "hopeful",
        "communicationStyle": "terse, salty dialogue",
        "theme": "loyalty against survival",
        "language": "English",
    },
    "promptSettings": {"temperature": 0.8, "maxWords": 1200},
    "storyarc": (
        "Aria takes the map at Port Veil, loses Mira to the guild in the Salt Archive, "
        "is betrayed by Bram, and returns to burn the map on the harbour wall."
    ),
    "backstory": (
        "A century ago the sea rose and swallowed the empire of Calder. Its harbour "
        "guilds now rule the drowned coast and tax every road above the water."
    ),
    "notes": "Keep chapters short. Mira must not die on the page.",
    "characters": [
        {
            "id": "0b6c3f5e-8f0a-4c55-9c1e-1d2a3b4c5d6e",
            "name": "Aria Stone",
            "role": "protagonist",
            "gender": "female",
            "appearance": "Salt-white hair, a courier's oilskin coat, a scar on her palm.",
            "backstory": "Raised on the docks of Port Veil; she runs sealed letters for coin.",
            "extraInfo": "Cannot swim.",
            "photoId": "photo-aria",
            "photoUrl": "/photos/aria.png",
            "photo_data": _photo("aria"),
            "photo_mime_type": "image/png",
            "favouriteColour": "teal",
        },
        {
            "id": "legacy-id-mira",
            "name": "Mira",
            "role": "mentor",
            "gender": "Female",
            "appearance": "Small, ink-stained fingers, round spectacles.",
            "backstory": "A retired cartographer who drew the last true map of Calder.",
            "photo_data": _photo("mira", 2000),
            "photo_mime_type": "image/jpeg",
        },
        {
            "id": "legacy-id-bram",
            "name": "Bram Holt",
            "alias": "The Gull",
            "role": "antagonist",
            "gender": "male",
            "appearance": "Broad, sunburnt, a gull feather in his hat.",
            "backstory": "A guild enforcer who was once Aria's friend.",
        },
        {
            "id": "5f1e9a7c-2d3b-4e8f-a6c5-7b9d0e1f2a3b",
            "name": "Tobin Reed",
            "role": "supporting",
            "gender": "male",
            "appearance": "Lanky ferryman with a crooked grin.",
            "backstory": "Ferries smugglers between the drowned towers.",
            "extraInfo": "Owes Bram money.",
        },
    ],
    "locations": [
        {
            "id": "loc-port",
            "name": "Port Veil",
            "visualDescription": "A harbour city of fog, lanterns and leaning towers.",
            "background": "The last free port of the old empire.",
            "imageId": "img-port",
            "imageUrl": "/images/port.jpg",
            "image_data": _photo("port"),
            "image_mime_type": "image/jpeg",
        },
        {
            "id": "6a7b8c9d-0e1f-4a2b-8c3d-4e5f6a7b8c9d",
            "name": "The Drowned Lantern",
            "visualDescription": "A low-beamed tavern half under water, lit by green lamps.",
            "background": "Smugglers trade rumours here.",
            "extraInfo": "The owner is deaf.",
        },
        {
            "id": "loc-archive",
            "name": "The Salt Archive",
            "visualDescription": "Shelves of crusted scrolls in a sealed bell tower.",
            "background": "The guild keeps every map of Calder here.",
        },
    ],
    "scenes": [
        {
            "id": "scene-arrival",
            "title": "Arrival",
            "description": "Aria lands at Port Veil with the sealed map.",
            "characters": ["Aria Stone", "Tobin Reed"],
            "location": "Port Veil",
            "time": "dusk",
            "order": 1,
        },
        {
            "id": "scene-lantern",
            "title": "Rumours",
            "description": "Bram corners Aria in the tavern.",
            "characters": ["Aria Stone", "Bram Holt"],
            "location": "The Drowned Lantern",
            "order": 2,
            "mood": "tense",
        },
    ],
    "multipleChapters": True,
    "fillIn": False,
    "timeline": [{"when": "year 1", "what": "the flood"}, {"when": "year 100", "what": "now"}],
    "imageId": "cover-1",
    "imageUrl": "/covers/salt-road.png",
    "visibleTabs": ["characters", "locations", "scenes"],
    "editorExperiment": {"unknown": ["kept", "as", "is"]},
}

GLASS_ORBIT: dict[str, Any] = {
    "id": "c0ffee00-1111-4222-8333-444455556666",
    "userId": 4411,
    "title": "Glass Orbit",
    "synopsis": "The crew of a salvage ship finds a derelict that is still broadcasting.",
    "createdAt": 1717000000000,
    "updatedAt": 1717990000000,
    "writingStyle": {
        "style": "close third person",
        "genre": "science fiction",
        "tone": "wry",
        "theme": "what we owe the dead",
    },
    "storyarc": "Salvage, discovery, mutiny, a choice between profit and rescue.",
    "backstory": "",
    "notes": "",
    "characters": [
        {
            "id": "9b2f6c1a-3e4d-4f5a-8b6c-7d8e9f0a1b2c",
            "name": "Idris Vale",
            "role": "protagonist",
            "gender": "male",
            "appearance": "Grey stubble, patched flight jacket.",
            "backstory": "Lost his licence after a salvage went wrong.",
            "photoUrl": "https://cdn.example.com/idris.webp",
        },
        {
            "id": "a3c5e7f9-1b2d-4e6f-8a0c-2e4f6a8c0e1f",
            "name": "Sefa Okoro",
            "alias": "Doc",
            "role": "ship's doctor",
            "gender": "female",
            "appearance": "Tall, shaved head, always in gloves.",
            "backstory": "Left a military hospital under a cloud.",
            "photo_data": _photo("sefa"),
            "photo_mime_type": "image/webp",
        },
        {
            "id": "b4d6f8a0-2c3e-4f5a-9b1d-3f5a7c9e1b2d",
            "name": "Juno",
            "role": "ship AI",
            "gender": "none",
            "appearance": "A voice and a ring of amber lights.",
            "extraInfo": "Speaks in ship's log entries.",
        },
        {
            "id": "c5e7a9b1-3d4f-4a6b-8c2e-4a6c8e0a2c3e",
            "name": "Commander Hale",
            "role": "antagonist",
            "gender": "female",
            "appearance": "Immaculate uniform, cold eyes.",
            "backstory": "Owns the salvage rights and wants the derelict sealed.",
            "rank": "Commander",
        },
    ],
    "locations": [
        {
            "id": "d6f8b0c2-4e5a-4b7c-9d3f-5b7d9f1b3d4f",
            "name": "The Meridian",
            "visualDescription": "A battered salvage tug, all cables and welding scars.",
            "background": "Idris bought it at auction.",
        },
        {
            "id": "e7a9c1d3-5f6b-4c8d-8e4a-6c8e0a2c4e5a",
            "name": "Kepler Station",
            "visualDescription": "A ring station turning above a gas giant.",
            "background": "Where salvage is sold, no questions asked.",
            "image_data": _photo("kepler"),
            "image_mime_type": "image/png",
        },
        {
            "id": "f8b0d2e4-6a7c-4d9e-9f5b-7d9f1b3d5f6b",
            "name": "The Red Dunes of Tarsis",
            "visualDescription": "Rust-coloured dunes under a small white sun.",
            "background": "A failed colony world.",
        },
    ],
    "scenes": [
        {
            "id": "a9c1e3f5-7b8d-4e0f-8a6c-8e0a2c4e6a7c",
            "title": "The Signal",
            "description": "Juno picks up a distress call from a ship dead for forty years.",
            "characters": ["Juno", "Idris Vale"],
            "location": "The Meridian",
            "order": 1,
        }
    ],
    "multipleChapters": False,
    "timeline": [],
    "visibleTabs": ["characters", "locations"],
    "fillIn": None,
    "colorScheme": "amber",
}

LANTERN_STREET: dict[str, Any] = {
    "id": "11111111-2222-4333-8444-555566667777",
    "userId": "writer-noir",
    "title": "Lantern Street",
    "synopsis": "A detective in 1949 San Francisco hunts the man who framed her brother.",
    "writingStyle": {
        "style": "third person, past tense",
        "genre": "noir mystery",
        "tone": "cynical",
        "communicationStyle": "clipped, hard-boiled",
        "language": "English",
    },
    "storyarc": "A body in the bay, a false confession, a jazz club ledger, the truth.",
    "backstory": "The city is run by a shipping syndicate that owns half the police.",
    "notes": "No phones in scenes: it is 1949.",
    "characters": [
        {
            "id": "22222222-3333-4444-8555-666677778888",
            "name": "June Castillo",
            "role": "protagonist",
            "gender": "female",
            "appearance": "Tailored grey suit, a chipped front tooth.",
            "backstory": "The first woman detective at Precinct 9.",
            "photo_data": _photo("june", 4000),
            "photo_mime_type": "image/png",
            "photoId": "p-june",
        },
        {
            "id": "33333333-4444-4555-8666-777788889999",
            "name": "Walter Finch",
            "role": "suspect",
            "gender": "male",
            "appearance": "Thin, nervous, ink on his cuffs.",
            "backstory": "The syndicate's bookkeeper.",
        },
        {
            "id": "44444444-5555-4666-8777-88889999aaaa",
            "name": "Lou Harper",
            "role": "informant",
            "gender": "female",
            "appearance": "Sequined dress, tired eyes.",
            "backstory": "Sings at the Blue Heron and hears everything.",
        },
        {
            "id": "55555555-6666-4777-8888-9999aaaabbbb",
            "name": "Evelyn Hart",
            "role": "widow",
            "gender": "female",
            "backstory": "Her husband's body was found in the bay.",
        },
    ],
    "locations": [
        {
            "id": "66666666-7777-4888-8999-aaaabbbbcccc",
            "name": "The Blue Heron Club",
            "visualDescription": "A smoky jazz club with a blue neon heron over the door.",
            "background": "The syndicate launders money through it.",
        },
        {
            "id": "77777777-8888-4999-8aaa-bbbbccccdddd",
            "name": "Precinct 9",
            "visualDescription": "Peeling green paint, a broken ceiling fan.",
        },
        {
            "id": "88888888-9999-4aaa-8bbb-ccccddddeeee",
            "name": "Pier 39 Warehouse",
            "visualDescription": "A cold warehouse of crates and gulls.",
            "background": "Where the body was found.",
        },
    ],
    "scenes": [
        {
            "id": "99999999-aaaa-4bbb-8ccc-ddddeeeeffff",
            "title": "The Body",
            "description": "June finds Mr Hart's body at the warehouse.",
            "characters": ["June Castillo"],
            "location": "Pier 39 Warehouse",
            "order": 1,
        },
        {
            "id": "aaaaaaaa-bbbb-4ccc-8ddd-eeeeffff0000",
            "title": "Last Set",
            "description": "Lou tells June about a ledger, between songs.",
            "characters": ["June Castillo", "Lou Harper"],
            "location": "The Blue Heron Club",
            "order": 2,
        },
    ],
    "timeline": [],
    "visibleTabs": ["characters", "locations", "scenes", "timeline"],
}

SUMMER_LETTERS: dict[str, Any] = {
    "id": "summer-letters",
    "title": "Summer Letters",
    "synopsis": "A baker and a travelling musician write to each other for one summer.",
    "writingStyle": {"genre": "contemporary romance", "tone": "warm", "style": "epistolary"},
    "storyarc": "Letters, a first meeting that goes wrong, a festival, a choice to stay.",
    "characters": [
        {
            "id": "d1e2f3a4-b5c6-4d7e-8f9a-0b1c2d3e4f5a",
            "name": "Nora Bell",
            "role": "protagonist",
            "gender": "female",
            "appearance": "Flour on her sleeves, freckles.",
            "backstory": "Took over her grandmother's bakery.",
            "photo_data": _photo("nora"),
            "photo_mime_type": "image/png",
        },
        {
            "id": "e2f3a4b5-c6d7-4e8f-9a0b-1c2d3e4f5a6b",
            "name": "Eli Moreno",
            "role": "love interest",
            "gender": "male",
            "appearance": "Sun-bleached hair, a battered guitar case.",
            "backstory": "Plays a different town every week.",
        },
    ],
    "locations": [
        {
            "id": "f3a4b5c6-d7e8-4f9a-8b1c-2d3e4f5a6b7c",
            "name": "Bell's Bakery",
            "visualDescription": "Blue shutters, a bell over the door, bread on the sill.",
        }
    ],
    "scenes": [],
    "notes": "",
    "backstory": "A seaside town in Maine.",
    "draftSettings": {"autosave": True},
}

COURT_OF_ASH: dict[str, Any] = {
    "id": "ash-court-0001",
    "userId": "writer-3",
    "title": "The Court of Ash",
    "synopsis": "A young queen must find the traitor in her council before the harvest war.",
    "writingStyle": {
        "style": "multiple points of view, past tense",
        "genre": "political fantasy",
        "tone": "tense",
        "theme": "power and its price",
        "language": "English",
    },
    "storyarc": "Coronation, a poisoned council, a spy uncovered, a war averted at a cost.",
    "backstory": "The old king died suddenly after signing a treaty with the river lords.",
    "notes": "Every chapter ends on a question.",
    "characters": [
        {
            "id": "ash-isolde",
            "name": "Queen Isolde",
            "role": "protagonist",
            "gender": "female",
            "appearance": "Nineteen, a heavy iron crown, ink-black braid.",
            "backstory": "Crowned a month after her father's death.",
            "photo_data": _photo("isolde"),
            "photo_mime_type": "image/png",
        },
        {
            "id": "ash-varric",
            "name": "Lord Varric",
            "role": "antagonist",
            "gender": "male",
            "appearance": "Silver beard, rings on every finger.",
            "backstory": "Master of coin; lent the old king a fortune.",
        },
        {
            "id": "ash-sera",
            "name": "Sera",
            "role": "spy",
            "gender": "female",
            "appearance": "Plain grey dress, forgettable face.",
            "backstory": "Trained by the river lords as a child.",
            "loyalty": "unknown",
        },
        {
            "id": "ash-aldous",
            "name": "Brother Aldous",
            "role": "confessor",
            "gender": "male",
            "appearance": "Shaved head, rope belt.",
            "backstory": "Heard the old king's last confession.",
        },
        {
            "id": "ash-rhea",
            "name": "Rhea Dorn",
            "alias": "Captain Dorn",
            "role": "captain of the guard",
            "gender": "female",
            "appearance": "Scarred knuckles, red cloak.",
        },
        {
            "id": "ash-finn",
            "name": "Finn",
            "role": "stable boy",
            "gender": "male",
            "appearance": "Twelve, straw in his hair.",
            "extraInfo": "Sees everything from the stables.",
        },
    ],
    "locations": [
        {
            "id": "ash-keep",
            "name": "Ashen Keep",
            "visualDescription": "Black stone walls stained by an old fire.",
            "background": "Seat of the crown for three hundred years.",
            "image_data": _photo("keep"),
            "image_mime_type": "image/jpeg",
        },
        {
            "id": "ash-wood",
            "name": "The Whispering Wood",
            "visualDescription": "Birches that rattle without wind.",
            "background": "The border with the river lords.",
        },
    ],
    "scenes": [
        {
            "id": "ash-scene-1",
            "title": "The Coronation",
            "description": "Isolde is crowned while Varric counts the guests.",
            "characters": ["Queen Isolde", "Lord Varric", "Brother Aldous"],
            "location": "Ashen Keep",
            "order": 1,
        },
        {
            "id": "ash-scene-2",
            "title": "Letters",
            "description": "Sera copies a letter by candlelight.",
            "characters": ["Sera"],
            "location": "Ashen Keep",
            "order": 2,
        },
    ],
    "multipleChapters": True,
    "timeline": [{"when": "harvest", "what": "the war"}],
    "visibleTabs": ["characters", "locations", "scenes"],
}

EMPTY: dict[str, Any] = {
    "id": "fresh-scenario-42",
    "userId": "writer-new",
    "title": "",
    "synopsis": "",
    "characters": [],
    "locations": [],
    "scenes": [],
    "createdAt": "2024-07-01T09:00:00Z",
    "visibleTabs": ["characters"],
}

SCENARIOS: dict[str, dict[str, Any]] = {
    "salt_road": SALT_ROAD,
    "glass_orbit": GLASS_ORBIT,
    "lantern_street": LANTERN_STREET,
    "summer_letters": SUMMER_LETTERS,
    "court_of_ash": COURT_OF_ASH,
    "empty": EMPTY,
}
"""Every scenario of the dev set, by name."""


def scenario(name: str) -> dict[str, Any]:
    """Return a fresh deep copy of the named scenario."""
    return copy.deepcopy(SCENARIOS[name])
