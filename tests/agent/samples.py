"""A realistic scenario: photos, legacy ids, unknown keys at every level."""

from __future__ import annotations

from typing import Any

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk" * 50

SAMPLE: dict[str, Any] = {
    "id": "scenario-1",
    "userId": "writer-7",
    "title": "The Salt Road",
    "synopsis": "A courier crosses a drowned empire.",
    "createdAt": "2024-05-01T10:00:00Z",
    "updatedAt": "2024-05-02T10:00:00Z",
    "writingStyle": {
        "style": "third person, past tense",
        "genre": "fantasy",
        "tone": "hopeful",
        "language": "English",
    },
    "promptSettings": {"temperature": 0.8},
    "storyarc": "Departure, betrayal, return.",
    "characters": [
        {
            "id": "0b6c3f5e-8f0a-4c55-9c1e-1d2a3b4c5d6e",
            "name": "Aria Stone",
            "role": "protagonist",
            "gender": "female",
            "appearance": "Salt-white hair.",
            "backstory": "Raised on the docks.",
            "photoId": "photo-1",
            "photoUrl": "/photos/aria.png",
            "photo_data": PNG,
            "photo_mime_type": "image/png",
            "favouriteColour": "teal",
        },
        {
            "id": "legacy-id-mira",
            "name": "Mira",
            "role": "mentor",
            "gender": "Female",
            "backstory": "A retired cartographer.",
            "photo_data": PNG,
        },
        {
            "id": "legacy-id-bram",
            "name": "Bram Holt",
            "alias": "The Gull",
            "role": "antagonist",
            "gender": "male",
        },
    ],
    "locations": [
        {
            "id": "loc-port",
            "name": "Port Veil",
            "visualDescription": "Fog and lanterns.",
            "image_data": PNG,
            "image_mime_type": "image/jpeg",
            "imageUrl": "/images/port.jpg",
        }
    ],
    "scenes": [
        {
            "id": "scene-1",
            "title": "Arrival",
            "characters": ["Aria Stone"],
            "location": "Port Veil",
            "order": 1,
        }
    ],
    "notes": "Keep chapters short.",
    "backstory": "The sea rose a century ago.",
    "multipleChapters": True,
    "fillIn": False,
    "timeline": [{"when": "year 1", "what": "the flood"}],
    "imageId": "cover-1",
    "imageUrl": "/covers/1.png",
    "visibleTabs": ["characters", "locations"],
    "editorExperiment": {"unknown": ["kept", "as", "is"]},
}
