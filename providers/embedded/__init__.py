"""The embedded default model: one llama.cpp server per host, shared by its workers.

``handle`` is the worker's side (attach to the host's server or start it); ``attach`` finds
and health-checks a live server; ``launch`` spawns one and reports a failed start;
``server`` is the detached model process itself; ``protocol`` is what worker and server
share on disk (lock, state and log files); ``settings`` is ``[embedded]``.
"""

from providers.embedded.handle import EmbeddedHandle
from providers.embedded.handle import start_or_attach
from providers.embedded.settings import EmbeddedModelError
from providers.embedded.settings import EmbeddedModelSettings

__all__ = ["EmbeddedHandle", "EmbeddedModelError", "EmbeddedModelSettings", "start_or_attach"]
