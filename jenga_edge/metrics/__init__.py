"""Metrics: the registry (registry.py), the agent's series (agent.py), the endpoint
(server.py, whose HTTP side, http.py, is imported only when it serves)."""
