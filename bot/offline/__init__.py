"""Offline tooling: the Slack stand-in and the demo. Only the demo command, the tests and bench import it."""
