"""The live-server fixtures of the end-to-end suite, for fuzzing, faults and soak tests."""

from tests.e2e.conftest import deskfleet_server  # noqa: F401
