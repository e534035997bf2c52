"""gateway/notifications/service.py: notification ids."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from gateway.notifications.service import uuid7


class TestUuid7:
    def test_version_variant_and_order(self) -> None:
        ids = [uuid7() for _ in range(50)]
        assert all(value.version == 7 and value.variant == uuid.RFC_4122 for value in ids)
        milliseconds = [value.int >> 80 for value in ids]
        assert milliseconds == sorted(milliseconds)
        assert abs(milliseconds[0] / 1000 - datetime.now(UTC).timestamp()) < 5
