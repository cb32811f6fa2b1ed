"""Protocol-true fakes of external venues, for tests that must not reach the internet."""
