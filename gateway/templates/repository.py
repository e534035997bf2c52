"""Every query on templates and their versions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

# A template's head row exists from its first PUT on; a DELETE marks it deleted and keeps every
# version (notifications refer to them); a PUT after that makes the next version.
_LOCK_HEAD = """
    INSERT INTO templates (name, latest_version) VALUES ($1, 0)
    ON CONFLICT (name) DO UPDATE SET name = excluded.name
    RETURNING latest_version, deleted_at IS NOT NULL AS deleted
"""
_VERSION = "SELECT name, version, content, category, created_at FROM template_versions WHERE name = $1 AND version = $2"
_INSERT_VERSION = """
    WITH version AS (
        INSERT INTO template_versions (name, version, content, category) VALUES ($1, $2, $3::jsonb, $4)
        RETURNING name, version, content, category, created_at
    ), head AS (
        UPDATE templates SET latest_version = $2, deleted_at = NULL, updated_at = now() WHERE name = $1
    )
    SELECT * FROM version
"""
# The latest version of a template that is not deleted (and, with $2, that version of it).
_LATEST = """
    SELECT v.name, v.version, v.content, v.category, v.created_at
    FROM templates AS t JOIN template_versions AS v ON v.name = t.name AND v.version = t.latest_version
    WHERE t.name = $1 AND t.deleted_at IS NULL
"""
_VERSION_OF_LIVE = """
    SELECT v.name, v.version, v.content, v.category, v.created_at
    FROM templates AS t JOIN template_versions AS v ON v.name = t.name AND v.version = $2
    WHERE t.name = $1 AND t.deleted_at IS NULL
"""
_DELETE = "UPDATE templates SET deleted_at = now(), updated_at = now() WHERE name = $1 AND deleted_at IS NULL"
_LIST = """
    SELECT v.name, v.version, v.content, v.category, v.created_at
    FROM templates AS t JOIN template_versions AS v ON v.name = t.name AND v.version = t.latest_version
    WHERE t.deleted_at IS NULL AND ($2::text IS NULL OR t.name > $2)
    ORDER BY t.name LIMIT $1
"""
# Versions by (name, version), deleted or not: what accepted notifications were rendered from.
_VERSIONS = """
    SELECT v.name, v.version, v.content, v.category, v.created_at
    FROM unnest($1::text[], $2::int[]) AS k(name, version)
    JOIN template_versions AS v ON v.name = k.name AND v.version = k.version
"""


@dataclass(frozen=True, slots=True)
class TemplateVersion:
    name: str
    version: int
    content: dict[str, Any]  # {"sms"?, "email"?: {"subject", "body"}, "slack"?}
    category: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> TemplateVersion:
        return cls(row["name"], row["version"], json.loads(row["content"]), row["category"], row["created_at"])


@dataclass(frozen=True, slots=True)
class PutOutcome:
    version: TemplateVersion
    created: bool  # a new version (False: identical to the latest, which is returned)
    first: bool  # the template did not exist (never, or deleted) before


class TemplateRepository:
    async def put(self, connection: asyncpg.Connection, *, name: str, content: dict[str, Any], category: str | None) -> PutOutcome:
        """Store a new version unless ``content`` and ``category`` are the latest's (one
        transaction; the head row's lock orders concurrent PUTs of one name)."""
        async with connection.transaction():
            head = await connection.fetchrow(_LOCK_HEAD, name)
            latest, deleted = head["latest_version"], head["deleted"]
            if latest and not deleted:
                current = TemplateVersion.from_row(await connection.fetchrow(_VERSION, name, latest))
                if current.content == content and current.category == category:
                    return PutOutcome(current, created=False, first=False)
            row = await connection.fetchrow(_INSERT_VERSION, name, latest + 1, json.dumps(content), category)
        return PutOutcome(TemplateVersion.from_row(row), created=True, first=latest == 0 or deleted)

    async def latest(self, connection: asyncpg.Connection, *, name: str) -> TemplateVersion | None:
        row = await connection.fetchrow(_LATEST, name)
        return TemplateVersion.from_row(row) if row else None

    async def version(self, connection: asyncpg.Connection, *, name: str, version: int) -> TemplateVersion | None:
        """That version, when the template is not deleted."""
        row = await connection.fetchrow(_VERSION_OF_LIVE, name, version)
        return TemplateVersion.from_row(row) if row else None

    async def delete(self, connection: asyncpg.Connection, *, name: str) -> bool:
        """Mark it deleted; False when there was no such template (or it was deleted already)."""
        return await connection.execute(_DELETE, name) == "UPDATE 1"

    async def list_after(self, connection: asyncpg.Connection, *, after: str | None, limit: int) -> list[TemplateVersion]:
        return [TemplateVersion.from_row(row) for row in await connection.fetch(_LIST, limit, after)]

    async def versions(self, connection: asyncpg.Connection, keys: Sequence[tuple[str, int]]) -> list[TemplateVersion]:
        """These (name, version)s, deleted templates' included."""
        rows = await connection.fetch(_VERSIONS, [name for name, _ in keys], [version for _, version in keys])
        return [TemplateVersion.from_row(row) for row in rows]
