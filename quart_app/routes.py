"""Every blueprint of the service, registered in one place.

The blueprints are imported inside the function, as in Flask's tutorial factory, so that
importing a blueprint module (a test does) can never import the factory in a cycle.
"""

from __future__ import annotations

from quart import Quart

__all__ = ["register_routes"]


def register_routes(app: Quart) -> None:
    """Register the API, the agent's transports, the credits, the probes, the docs, the console."""
    from blueprints.agent_sse import blueprint as agent_sse_blueprint
    from blueprints.agent_ws import blueprint as agent_ws_blueprint
    from blueprints.console import blueprint as console_blueprint
    from blueprints.credits import blueprint as credits_blueprint
    from blueprints.docs import blueprint as docs_blueprint
    from blueprints.probes import blueprint as probes_blueprint
    from blueprints.proxy import blueprint as proxy_blueprint

    app.register_blueprint(proxy_blueprint)
    app.register_blueprint(credits_blueprint)
    app.register_blueprint(agent_sse_blueprint)
    app.register_blueprint(agent_ws_blueprint)
    app.register_blueprint(probes_blueprint)
    app.register_blueprint(docs_blueprint)
    app.register_blueprint(console_blueprint)
