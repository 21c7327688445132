"""Test-support helpers shared by the Switchboard test suite."""
