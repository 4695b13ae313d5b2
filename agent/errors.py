"""Errors the scenario agent raises, each carrying a message that is safe to show a writer.

The agent streams over a connection whose HTTP status is already sent, so failures become
a chat message plus an error status (contract.md 8.3). Exceptions defined here carry that
message themselves; anything else is reported with a generic text, because upstream
exception messages may contain URLs, keys or prompt fragments.

* AgentError: any failure with a user-safe ``user_message``.
    * AgentOutputError: the model's structured output stayed invalid after one repair.
    * AgentRefusalError: the model explicitly refused to answer.
"""

from __future__ import annotations

__all__ = ["AgentError", "AgentOutputError", "AgentRefusalError"]


class AgentError(Exception):
    """A failure of the agent whose message can be shown to the writer as is.

    Args:
        user_message: Plain text for the chat panel; it must not contain secrets or
            upstream details.
    """

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class AgentOutputError(AgentError):
    """The model did not produce valid structured output, even after a repair attempt.

    The message says what was understood of the request and what the writer can try,
    when the step knows it: "the AI failed" alone leaves a writer with nothing to do.

    Args:
        task: Short name of the structured task that failed (e.g. ``classification``).
        understood: What the agent understood the writer wants, in words
            ("add a new character named Morvane").
        suggestion: What to try instead, in words.
    """

    def __init__(
        self, task: str, *, understood: str | None = None, suggestion: str | None = None
    ) -> None:
        step = task.replace("_", " ")
        advice = suggestion or "Please rephrase your request or try another model."
        if understood:
            message = (
                f"I understood that you want to {understood}, but the AI model did not "
                f"return a usable answer for the {step} step, even after a retry. {advice}"
            )
        else:
            message = (
                f"The AI model did not return a usable answer for the {step} step, even "
                f"after a retry. {advice}"
            )
        super().__init__(message)
        self.task = task


class AgentRefusalError(AgentError):
    """The model refused the request (an OpenAI-style ``refusal`` instead of content).

    Args:
        task: Short name of the structured task the model refused.
    """

    def __init__(self, task: str) -> None:
        super().__init__("The AI model declined this request. Please rephrase it and try again.")
        self.task = task
