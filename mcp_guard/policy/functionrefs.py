"""Condition functions named by reference (``module:attr``), for the CLI and ``guard.toml``.

Code passes functions to :func:`~.loader.load_policy` directly and packages
publish them as entry points; a policy written next to a plain module (no
package to install) names them here instead: ``--functions ledger_rules:FUNCTIONS``
or ``[guard] policy_functions = ["ledger_rules:within_limit"]``. The attribute
is one callable (the policy calls it by the attribute's name, or by ``NAME``
in ``NAME=module:attr``) or a mapping of names to callables. Modules are looked
up first in the given directory (the config's, or the current one for the CLI).
"""

from __future__ import annotations

import difflib
import importlib
import sys
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import PolicyError

__all__ = ["import_functions"]


def _one(ref: str, base: Path | None, field: str) -> dict[str, Callable[..., Any]]:
    name, _, target = ref.rpartition("=") if "=" in ref else ("", "", ref)
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise PolicyError(f"{ref!r}: name a function as 'module:attr' (or 'name=module:attr')", field=field)
    added = base is not None and str(base) not in sys.path
    if added:
        sys.path.insert(0, str(base))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        where = f" (looked in {base} and the Python path)" if base is not None else ""
        raise PolicyError(f"{ref!r}: cannot import {module_name!r}: {exc}{where}", field=field) from None
    finally:
        if added:
            sys.path.remove(str(base))
    value: Any = module
    for part in attr.split("."):
        if not hasattr(value, part):
            known = [n for n in dir(value) if not n.startswith("_")]
            close = difflib.get_close_matches(part, known, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise PolicyError(f"{ref!r}: {module_name!r} has no attribute {part!r}{hint}", field=field)
        value = getattr(value, part)
    if isinstance(value, Mapping):
        if name:
            why = f"{ref!r}: a mapping of functions brings its own names; drop '{name}='"
            raise PolicyError(why, field=field)
        return {str(k): v for k, v in value.items()}
    if not callable(value):
        raise PolicyError(f"{ref!r}: {attr!r} is neither a function nor a mapping of functions", field=field)
    return {name or attr.rsplit(".", 1)[-1]: value}


def import_functions(
    refs: Iterable[str], base: Path | None = None, field: str = "functions"
) -> dict[str, Callable[..., Any]]:
    """The functions ``refs`` name, by the name policies call them; errors name the reference."""
    functions: dict[str, Callable[..., Any]] = {}
    for ref in refs:
        for fname, fn in _one(ref.strip(), base, field).items():
            if fname in functions and functions[fname] is not fn:
                raise PolicyError(f"{ref!r}: a function named {fname!r} is already given", field=field)
            functions[fname] = fn
    return functions
