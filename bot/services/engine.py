"""The database handle a listener passes to a service: handlers hold it but never import the database layer."""

from __future__ import annotations

from sqlalchemy import Engine

__all__ = ["Engine"]
