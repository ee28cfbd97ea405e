"""The fault-injection suite (docs/RELIABILITY.md). A package, so that its modules never collide with the
test modules of the same name in tests/e2e and tests/unit."""
