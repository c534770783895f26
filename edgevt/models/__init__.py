"""Model registry and loading: name -> ModelSpec -> torch module."""

from edgevt.models.registry import (
    Family,
    ModelSpec,
    families,
    get_spec,
    list_models,
)

__all__ = ["Family", "ModelSpec", "families", "get_spec", "list_models"]
