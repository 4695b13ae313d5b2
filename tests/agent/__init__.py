"""Tests of the scenario agent (agent/)."""
