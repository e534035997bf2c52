"""Routes for /templates. Thin: validation is in the schemas, logic in the service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, Response, status

from gateway.auth import TemplatesClient
from gateway.content.schemas import ContentPublic
from gateway.deps import Connection, TemplateName
from gateway.errors import ErrorBody
from gateway.pagination import Cursor, Limit
from gateway.templates.schemas import PreviewRequest, TemplateContent, TemplatePage, TemplatePublic
from gateway.templates.service import TemplateService

router = APIRouter(
    prefix="/templates",
    tags=["templates"],
    responses={400: {"model": ErrorBody}, 403: {"model": ErrorBody}, 429: {"model": ErrorBody}},
)


async def template_service(request: Request) -> TemplateService:
    return request.app.state.templates


Templates = Annotated[TemplateService, Depends(template_service)]
NOT_FOUND = {404: {"model": ErrorBody, "description": "No such template (or it was deleted)."}}


@router.put(
    "/{name}",
    response_model=TemplatePublic,
    response_model_exclude_none=True,
    status_code=status.HTTP_200_OK,
    responses={201: {"model": TemplatePublic, "description": "The template's first version."}},
)
async def put_template(
    name: TemplateName, content: TemplateContent, connection: Connection, _client: TemplatesClient, templates: Templates, response: Response
) -> TemplatePublic:
    """Create a template (201) or its next version (200); an identical PUT answers 200 with the same version."""
    stored, first = await templates.put(connection, name=name, content=content)
    if first:
        response.status_code = status.HTTP_201_CREATED
    return stored


@router.get("/{name}", response_model=TemplatePublic, response_model_exclude_none=True, responses=NOT_FOUND)
async def get_template(name: TemplateName, connection: Connection, _client: TemplatesClient, templates: Templates) -> TemplatePublic:
    """Read a template's latest version."""
    return await templates.get(connection, name=name)


@router.get("/{name}/versions/{version}", response_model=TemplatePublic, response_model_exclude_none=True, responses=NOT_FOUND)
async def get_template_version(
    name: TemplateName,
    version: Annotated[int, Path(ge=1, le=2_147_483_647, description="A version number (1, 2, ...).")],
    connection: Connection,
    _client: TemplatesClient,
    templates: Templates,
) -> TemplatePublic:
    """Read one version of a template."""
    return await templates.get(connection, name=name, version=version)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
async def delete_template(name: TemplateName, connection: Connection, _client: TemplatesClient, templates: Templates) -> Response:
    """Delete a template (also succeeds when there is none): later sends with it are refused; accepted ones are still delivered."""
    await templates.delete(connection, name=name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("", response_model=TemplatePage, response_model_exclude_none=True)
async def list_templates(
    request: Request, connection: Connection, _client: TemplatesClient, templates: Templates, cursor: Cursor = None, limit: Limit = None
) -> TemplatePage:
    """List templates (their latest versions) by name, a page at a time."""
    return await templates.list_page(connection, cursor=cursor, limit=limit or request.app.state.settings.templates_page_size)


@router.post("/{name}/preview", response_model=ContentPublic, response_model_exclude_none=True, responses=NOT_FOUND)
async def preview_template(
    name: TemplateName, preview: PreviewRequest, connection: Connection, _client: TemplatesClient, templates: Templates
) -> ContentPublic:
    """Render every channel of the template's latest version with this personalisation, or answer the 400 a send would get."""
    return await templates.preview(connection, name=name, personalisation=preview.personalisation)
