"""Method options: each method declares its options with published defaults; values from params/CLI are cast to their types."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fer_pipeline.core.io import parse_bool


def _cast(method: str, name: str, value: Any, default: Any) -> Any:
    """Cast one option to the type of its default (`dvc exp run -S` may hand over "0.7" or "true")."""
    where = f"methods.{method}.{name}={value!r}"
    if isinstance(default, bool):
        return parse_bool(f"methods.{method}.{name}", value)
    if isinstance(default, (int, float)):
        try:
            number = float(str(value).strip()) if isinstance(value, str) else float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where} is not a number") from None
        if isinstance(default, int):
            if not number.is_integer():
                raise ValueError(f"{where} must be a whole number")
            return int(number)
        return number
    return "none" if value is None else str(value).strip()


def cast_options(method: str, defaults: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults overridden by `given`, every value cast; unknown names are an error listing the valid ones."""
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        valid = ", ".join(sorted(defaults)) or "none (this method has no options)"
        raise ValueError(f"unknown option(s) {unknown} for method {method!r}; valid: {valid}")
    return {name: _cast(method, name, given.get(name, default), default) for name, default in defaults.items()}
