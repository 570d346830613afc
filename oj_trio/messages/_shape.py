"""The one trick every ``messages`` module shares: ``TypedDict`` for mypy, ``dict`` at run time.

See :mod:`oj_trio.messages`' docstring for why. The type checker gets the real
``typing.TypedDict``; at run time a shape is a plain ``dict`` subclass whose ``__annotations__``
stay the unevaluated strings (every ``messages`` module has ``from __future__ import
annotations``), which :mod:`oj_trio.messages.schema` reads on the daemon side.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from typing import TypedDict as TypedDict
else:
    TypedDict = dict
