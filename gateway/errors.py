"""API errors: typed exceptions raised anywhere, turned into JSON responses in one place.

Every error body is ``{"message": "<human sentence>"}``, plus ``field`` when one input field is
at fault, and whatever else an error lists (a CSV job's row ``errors``). Nothing a client sends may produce a 500.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path


class ErrorBody(BaseModel):
    message: str
    field: str | None = None


class ApiError(Exception):
    status_code = 400

    def __init__(
        self, message: str, *, field: str | None = None, headers: dict[str, str] | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message, self.field, self.headers, self.details = message, field, headers, details


class BadRequestError(ApiError):
    status_code = 400


class UnauthenticatedError(ApiError):
    status_code = 401


class ForbiddenError(ApiError):
    status_code = 403


class NotFoundError(ApiError):
    status_code = 404


class ConflictError(ApiError):
    status_code = 409


class TooManyRequestsError(ApiError):
    status_code = 429


class InternalError(ApiError):
    status_code = 500


def error_response(
    status_code: int,
    message: str,
    *,
    field: str | None = None,
    headers: dict[str, str] | None = None,
    details: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"message": message}
    if field is not None:
        body["field"] = field
    body.update(details or {})
    return JSONResponse(body, status_code=status_code, headers=headers)


def api_error_response(exc: ApiError) -> JSONResponse:
    return error_response(exc.status_code, exc.message, field=exc.field, headers=exc.headers, details=exc.details)


def describe_validation_error(error: dict[str, Any]) -> tuple[str, str | None]:
    """One human sentence for the first thing wrong with a request, and the field it names."""
    location = [str(part) for part in error.get("loc", ()) if part not in ("body", "path", "query", "header")]
    field = location[0] if location else None
    kind = error.get("type", "")
    if kind == "json_invalid":
        return "the request body is not valid JSON", None
    if kind in ("model_attributes_type", "dict_type") or (kind == "missing" and not location):
        return "the request body must be a JSON object", None
    if kind == "missing" and field:
        return f"missing {'.'.join(location)}", field
    context = error.get("ctx") or {}
    # Our own validators raise ValueError with a complete sentence; pydantic prefixes it.
    detail = str(context.get("error") or error.get("msg", "is invalid"))
    detail = detail.removeprefix("Value error, ")
    if kind == "value_error" and field and detail.startswith("contains "):
        return f"{field} {detail}", field
    if kind == "value_error" or not field:
        return detail, field
    if not detail.startswith(field):
        return f"invalid {field}: {detail}", field
    return detail, field


def invalid_input(exc: ValidationError, *location: str) -> BadRequestError:
    """The 400 for the first thing pydantic found wrong with an input at ``location`` (``"body"``;
    ``"header", name``)."""
    error = exc.errors(include_url=False)[0]
    message, field = describe_validation_error({**error, "loc": (*location, *error.get("loc", ()))})
    return BadRequestError(message, field=field)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return api_error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        message, field = describe_validation_error(exc.errors()[0])
        return error_response(400, message, field=field)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        messages = {404: "no such resource", 405: "method not allowed for this resource"}
        message = exc.detail if isinstance(exc.detail, str) and exc.detail not in ("Not Found", "Method Not Allowed") else None
        headers = exc.headers
        if exc.status_code == 405:
            # The router names the methods of the first route whose path matched; the resource
            # has those of every operation the document lists on its path.
            allowed = documented_methods(request.app, request.url.path)
            if allowed:
                headers = {**(headers or {}), "Allow": ", ".join(allowed)}
        return error_response(exc.status_code, message or messages.get(exc.status_code, "request refused"), headers=headers)


def documented_methods(app: FastAPI, path: str) -> list[str]:
    """The methods of the OpenAPI document's operations on ``path`` (a request's path)."""
    return [
        method.upper()
        for template, operations in app.openapi()["paths"].items()
        if compile_path(template)[0].match(path)
        for method in operations
    ]
