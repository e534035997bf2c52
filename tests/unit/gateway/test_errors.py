"""gateway/errors.py: how validation errors are described to clients."""

from __future__ import annotations

from gateway.errors import describe_validation_error


class TestValidationDescriptions:
    def test_invalid_json(self) -> None:
        assert describe_validation_error({"type": "json_invalid", "loc": ("body", 0)}) == ("the request body is not valid JSON", None)

    def test_builtin_errors_name_the_field(self) -> None:
        message, field = describe_validation_error({"type": "string_type", "loc": ("body", "recipient"), "msg": "Input should be a valid string"})
        assert (message, field) == ("invalid recipient: Input should be a valid string", "recipient")
