"""Modules that are also functions: ``rftcost.spend``, ``rftcost.explain``, ``rftcost.estimate``.

``rftcost`` exports the function ``spend`` from the module ``rftcost.spend``. Once that
module has been imported (by any code), Python binds the package attribute
``rftcost.spend`` to the module, shadowing the function. Making the module callable
keeps ``rftcost.spend(bill)`` meaning ``rftcost.spend.spend(bill)`` whichever import
came first.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

__all__ = ["make_module_callable"]


def make_module_callable(module_name: str, function: Callable[..., Any]) -> None:
    """Let calling the module ``module_name`` call ``function``."""

    class CallableModule(types.ModuleType):
        __doc__ = sys.modules[module_name].__doc__

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            return function(*args, **kwargs)

    sys.modules[module_name].__class__ = CallableModule
