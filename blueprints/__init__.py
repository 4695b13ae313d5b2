"""HTTP, SSE and WebSocket routes: thin handlers that validate, call one service, return."""
