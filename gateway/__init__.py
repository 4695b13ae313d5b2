"""The transport-free services between the routes and the models.

``completions`` proxies a chat completion (hold, call, relay, settle) and ``continuation``
finishes an answer whose stream died; ``turns`` runs an agent turn and ``sessions`` a
two-way agent session; ``settlement`` prices every ending once and hands it to the
metrics and the ledger (``billing``); ``holds`` sizes a call's credit hold. No Quart here:
``blueprints`` adapt these to HTTP, SSE and the WebSocket.
"""
