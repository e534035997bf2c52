"""Template management, previews, and the parsed versions the accept renders from.

Versions never change once made, so the parsed form of each (``CompiledTemplate``) is kept in
memory (``TemplateCache``) and never invalidated; which version is a template's latest, and
whether it is deleted, is read from Postgres by every accept (in the statement that reads the
recipients), so every replica sees a new version or a deletion at once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg

from gateway.content.limits import check_limits, render_within_limits
from gateway.content.rendering import CompiledTemplate
from gateway.content.schemas import ContentPublic
from gateway.errors import BadRequestError, NotFoundError
from gateway.pagination import decode_cursor, encode_cursor
from gateway.templates.repository import PutOutcome, TemplateRepository, TemplateVersion
from gateway.templates.schemas import EmailTemplate, TemplateContent, TemplatePage, TemplatePublic

def template_not_found(name: str) -> NotFoundError:
    return NotFoundError(f"template not found: {name}")


class TemplateCache:
    """Parsed template versions by (name, version), the most recently used ``capacity`` of them."""

    def __init__(self, capacity: int = 512) -> None:
        self._capacity = capacity
        self._versions: OrderedDict[tuple[str, int], CompiledTemplate] = OrderedDict()

    def get(self, name: str, version: int) -> CompiledTemplate | None:
        compiled = self._versions.get((name, version))
        if compiled is not None:
            self._versions.move_to_end((name, version))
        return compiled

    def add(self, version: TemplateVersion) -> CompiledTemplate:
        compiled = compile_version(version)
        self._versions[(version.name, version.version)] = compiled
        while len(self._versions) > self._capacity:
            self._versions.popitem(last=False)
        return compiled


def compile_version(version: TemplateVersion) -> CompiledTemplate:
    return CompiledTemplate.compile(name=version.name, version=version.version, content=version.content, category=version.category)


class TemplateService:
    def __init__(self, *, cache: TemplateCache | None = None, repository: TemplateRepository | None = None) -> None:
        self.cache = cache or TemplateCache()
        self._repository = repository or TemplateRepository()

    async def put(self, connection: asyncpg.Connection, *, name: str, content: TemplateContent) -> tuple[TemplatePublic, bool]:
        """Store the template (a new version when it changed); True when it did not exist before."""
        stored = content.stored()
        # Parsed and checked before anything is stored: a placeholder without a name, or a text
        # its channel would refuse even with every placeholder empty, is refused now.
        compiled = CompiledTemplate.compile(name=name, version=0, content=stored, category=content.category)
        unfilled = compiled.render_unfilled()
        for channel in compiled.channels:
            check_limits(unfilled, [channel], field=channel.value, what=f"the {channel.value} text without its placeholders' values")
        outcome: PutOutcome = await self._repository.put(connection, name=name, content=stored, category=content.category)
        return self._public(outcome.version), outcome.first

    async def get(self, connection: asyncpg.Connection, *, name: str, version: int | None = None) -> TemplatePublic:
        found = await (self._repository.latest(connection, name=name) if version is None else self._repository.version(connection, name=name, version=version))
        if found is None:
            if version is not None and await self._repository.latest(connection, name=name) is not None:
                raise NotFoundError(f"template {name} has no version {version}")
            raise template_not_found(name)
        return self._public(found)

    async def delete(self, connection: asyncpg.Connection, *, name: str) -> None:
        await self._repository.delete(connection, name=name)

    async def list_page(self, connection: asyncpg.Connection, *, cursor: str | None, limit: int) -> TemplatePage:
        after = decode_cursor(cursor) if cursor else None
        rows = await self._repository.list_after(connection, after=after, limit=limit + 1)
        page, more = rows[:limit], len(rows) > limit
        return TemplatePage(items=[self._public(row) for row in page], next_cursor=encode_cursor(page[-1].name) if more else None)

    async def preview(self, connection: asyncpg.Connection, *, name: str, personalisation: Mapping[str, Any] | None) -> ContentPublic:
        """Every channel of the latest version rendered, or the 400 a send with it would get."""
        compiled = await self.latest_compiled(connection, name=name)
        if compiled is None:
            raise template_not_found(name)
        rendering = render_within_limits(compiled, personalisation, channels=compiled.channels, sent=compiled.channels)
        return ContentPublic.of(rendering.content)

    async def latest_compiled(self, connection: asyncpg.Connection, *, name: str) -> CompiledTemplate | None:
        """The template's latest version, parsed; None when there is no such template (or it is deleted)."""
        latest = await self._repository.latest(connection, name=name)
        if latest is None:
            return None
        return self.cache.get(latest.name, latest.version) or self.cache.add(latest)

    async def compiled(self, connection: asyncpg.Connection, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], CompiledTemplate]:
        """These versions, parsed: from the cache, the others read in one statement."""
        found: dict[tuple[str, int], CompiledTemplate] = {}
        missing = []
        for name, version in set(keys):
            compiled = self.cache.get(name, version)
            if compiled is None:
                missing.append((name, version))
            else:
                found[(name, version)] = compiled
        if missing:
            for row in await self._repository.versions(connection, missing):
                found[(row.name, row.version)] = self.cache.add(row)
        return found

    def _public(self, version: TemplateVersion) -> TemplatePublic:
        compiled = self.cache.get(version.name, version.version) or self.cache.add(version)
        content = version.content
        return TemplatePublic(
            name=version.name,
            version=version.version,
            sms=content.get("sms"),
            email=EmailTemplate(**content["email"]) if "email" in content else None,
            slack=content.get("slack"),
            category=version.category,
            placeholders=[placeholder.name for placeholder in compiled.placeholders],
            created_at=version.created_at,
        )


def refuse_unknown_template(name: str) -> BadRequestError:
    """A send naming a template that does not exist (or is deleted, or lacks that version)."""
    return BadRequestError(f"template not found: {name}", field="template")
