"""Test support shared by the test suite and the benchmarks.

``testing.upstream`` is the scripted OpenAI-compatible upstream: the tests provoke upstream
faults with it and the benchmarks measure the service against it as the direct upstream.
It ships with the package (typed, importable from anywhere) because both need it.
"""
