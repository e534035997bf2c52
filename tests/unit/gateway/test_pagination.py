"""gateway/pagination.py: the listing cursor."""

from __future__ import annotations

import pytest

from gateway.errors import BadRequestError
from gateway.pagination import decode_cursor, encode_cursor


class TestCursor:
    def test_round_trip(self) -> None:
        for name in ("jane", "José Núñez", "a+b@c"):
            assert decode_cursor(encode_cursor(name)) == name

    @pytest.mark.parametrize("cursor", ["!!!", "a", "%%%", "//=="])
    def test_garbage_is_a_bad_request(self, cursor: str) -> None:
        with pytest.raises(BadRequestError):
            decode_cursor(cursor)
