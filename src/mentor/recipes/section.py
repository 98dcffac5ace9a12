"""The base of every recipe section: unknown keys rejected, assignments checked, numbers finite, no booleans for
numbers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator


class Section(BaseModel):
    """Base of every recipe section: unknown keys are rejected, values are checked on assignment, numbers are
    finite."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value: Any, info: ValidationInfo) -> Any:
        """YAML's true/false are not 1/0: pydantic's lax mode would take them for a number key."""
        if isinstance(value, bool) and info.field_name is not None:
            if cls.model_fields[info.field_name].annotation in (int, float, int | None, float | None):
                raise ValueError("Input should be a number, not a boolean")
        return value
