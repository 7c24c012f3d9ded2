"""Use cases: each opens and commits its own unit of work and returns plain values."""

from sqlalchemy import Engine

# What a handler hands to a service: the engine from the Bolt context, typed without the handler importing the
# database layer (handlers import no storage, sqlmodel or sqlalchemy).
__all__ = ["Engine"]
