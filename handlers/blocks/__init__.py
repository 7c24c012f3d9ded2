"""Pure Block Kit builders and the ids the manifest and listeners share: one module per surface.

The primitives (`bot.core.blockkit`) and the shared builders (`handlers.blocks.common`) are re-exported here, so
`from handlers import blocks` and `blocks.section(...)` read as they always have.
"""

from bot.core.blockkit import *  # noqa: F403
from handlers.blocks.common import *  # noqa: F403
