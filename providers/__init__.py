"""The provider layer: OpenAI-compatible upstreams, the pool over them and the embedded model."""
