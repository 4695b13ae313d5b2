"""Test suite for the StoryWriter LLM backend."""
