"""Where the packaged data lives: named Cypher queries and the scope templates.

An installed wheel carries them inside the package (``hopper_graph/_data/``); a checkout
keeps them in the top-level ``cypher/`` and ``config/instances/`` folders.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent


def data_dir(relative: str) -> Path:
    """The packaged copy of ``relative`` when installed, else the checkout's folder."""
    packaged = _PACKAGE / "_data" / relative
    return packaged if packaged.is_dir() else _CHECKOUT / relative


def cypher_dir() -> Path:
    return data_dir("cypher")


def templates_dir() -> Path:
    return data_dir("config/instances")
