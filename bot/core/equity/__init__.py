"""equity package."""
