"""The pure domain: no I/O, no Slack, no database, no clock."""
