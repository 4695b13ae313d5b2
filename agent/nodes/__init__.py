"""Graph nodes of the scenario agent, one module per kind of work.

Nothing is re-exported here: each node function has its module's name, and re-exporting
it would shadow the module (``agent.nodes.modify`` would become the function).
"""
