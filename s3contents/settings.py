"""Settings read from the environment: each trait names its variables once, in its tag.

A trait declared ``.tag(config=True, env=("JPY_S3_BUCKET", "JPYNB_S3_BUCKET"))`` takes the
first of those variables that is set, unless Jupyter's configuration (or a keyword
argument) already gave it a value: configuration files win over the environment, the
environment wins over the default.
"""

from __future__ import annotations

import json
import os
from typing import Any

from traitlets import Bool, Dict, Float, Int, TraitError, TraitType
from traitlets.config import Configurable

__all__ = ["apply_environment", "configured_names", "parse_env_value"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def parse_env_value(trait: TraitType[Any, Any], var: str, raw: str) -> Any:
    """Convert the text of environment variable ``var`` to ``trait``'s type."""
    if isinstance(trait, Bool):
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise TraitError(f"{var} must be true or false, not {raw!r}")
    if isinstance(trait, Int):
        try:
            return int(raw)
        except ValueError:
            raise TraitError(f"{var} must be an integer, not {raw!r}") from None
    if isinstance(trait, Float):
        try:
            return float(raw)
        except ValueError:
            raise TraitError(f"{var} must be a number, not {raw!r}") from None
    if isinstance(trait, Dict) or trait.metadata.get("env_json"):
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as err:
            raise TraitError(f"{var} must be a JSON object: {err}") from None
        if not isinstance(value, dict):
            raise TraitError(f"{var} must be a JSON object")
        return value
    return raw


def configured_names(obj: Configurable, kwargs: dict[str, Any]) -> set[str]:
    """Traits given a value by keyword arguments or by Jupyter's configuration."""
    names = set(kwargs)
    for section in obj.section_names():
        if section in obj.config:
            names.update(obj.config[section].keys())
    return names


def apply_environment(obj: Configurable, explicit: set[str]) -> dict[str, str]:
    """Set the traits of ``obj`` not in ``explicit`` from their environment variables.

    ``explicit`` names the traits configured otherwise (see :func:`configured_names`);
    traitlets stores static defaults at construction, so "has a value" cannot tell.
    Returns ``{trait: variable}`` for the traits set this way (for start-up logs; values
    are never logged).
    """
    used: dict[str, str] = {}
    for name, trait in obj.traits().items():
        names = trait.metadata.get("env")
        if not names or name in explicit:
            continue
        if isinstance(names, str):
            names = (names,)
        for var in names:
            raw = os.environ.get(var)
            if raw is None:
                continue
            obj.set_trait(name, parse_env_value(trait, var, raw))
            used[name] = var
            break
    return used
