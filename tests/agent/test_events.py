from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from agent import events


def test_progress_status_frame() -> None:
    frame = events.status("analyzing", node="classify", content="Analyzing your request")
    assert frame.to_json() == (
        '{"type":"status","content":"Analyzing your request",'
        '"metadata":{"status":"analyzing","node":"classify"}}'
    )


def test_completed_frame_is_exactly_the_contract() -> None:
    assert events.completed().to_dict() == {
        "type": "status",
        "content": "completed",
        "metadata": {"status": "completed"},
    }


def test_chat_chunk_frame() -> None:
    assert events.chat_chunk("Hel").to_json() == (
        '{"type":"chat","content":"Hel","streaming":true,"metadata":{"streaming":true}}'
    )


def test_follow_ups_frame_is_exactly_the_contract() -> None:
    frame = events.follow_ups(["A?", "B?", "C?"])
    assert frame.to_dict() == {
        "type": "chat",
        "content": "",
        "streaming": True,
        "metadata": {"streaming": True, "follow_up_questions": ["A?", "B?", "C?"], "final": True},
    }


def test_update_scenario_frame_keeps_nulls_in_the_payload() -> None:
    frame = events.update_scenario({"characters": [{"id": "a", "alias": None}]})
    assert json.loads(frame.to_bytes()) == {
        "type": "tool_call",
        "content": "",
        "metadata": {
            "tool_call": {
                "action": "update_scenario",
                "parameters": {"updated_scenario": {"characters": [{"id": "a", "alias": None}]}},
                "status": "completed",
            }
        },
    }


def test_create_scenario_frame() -> None:
    call = events.create_scenario({"id": "s", "title": "T"}).to_dict()["metadata"]["tool_call"]
    assert call == {
        "action": "create_scenario",
        "parameters": {"scenario": {"id": "s", "title": "T"}},
        "status": "completed",
    }


def test_failure_pair() -> None:
    chat, status = events.failure("Something broke.")
    assert chat.to_dict() == {
        "type": "chat",
        "content": "Something broke.",
        "streaming": False,
        "metadata": {"streaming": False, "final": True},
    }
    assert status.to_dict() == {
        "type": "status",
        "content": "error",
        "metadata": {"status": "error", "error": "Something broke."},
    }


def test_frames_round_trip_and_are_frozen() -> None:
    frame = events.follow_ups(["A?", "B?", "C?"])
    assert events.event_adapter.validate_json(frame.to_json()) == frame
    with pytest.raises(ValidationError):
        frame.content = "x"


def test_non_ascii_text_is_sent_as_utf8() -> None:
    assert (
        events.chat_chunk("héros").to_bytes()
        == (
            '{"type":"chat","content":"héros","streaming":true,"metadata":{"streaming":true}}'
        ).encode()
    )
