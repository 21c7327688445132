"""The OpenAPI document, with request bodies described by the wire contract itself.

Litestar renders msgspec Structs into OpenAPI schemas but drops some constraints
(item patterns and lengths inside arrays, for one); a document looser than the
server lets clients -- and schema fuzzers -- send bodies the server refuses. The
render plugins here replace those components by msgspec's own JSON schema of the
same type, so the document and the validation come from one definition.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin, SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme

from .schemas import ChatRequest

__all__ = [
    "ContractJsonRenderPlugin",
    "ContractSwaggerRenderPlugin",
    "contract_schemas",
    "openapi_config",
]

FAVICON = "<link rel='icon' type='image/svg+xml' href='/static/favicon.svg'>"

#: Types whose OpenAPI components come from msgspec (request bodies: they must be exact).
CONTRACT_TYPES: tuple[type[msgspec.Struct], ...] = (ChatRequest,)


def contract_schemas() -> dict[str, Any]:
    """msgspec's JSON schemas of the contract types, with OpenAPI component references."""
    _, components = msgspec.json.schema_components(
        CONTRACT_TYPES, ref_template="#/components/schemas/{name}"
    )
    return components


def _patched(openapi_schema: dict[str, Any]) -> dict[str, Any]:
    schemas = openapi_schema.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(contract_schemas())
    return openapi_schema


class ContractJsonRenderPlugin(JsonRenderPlugin):
    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, _patched(openapi_schema))


class ContractSwaggerRenderPlugin(SwaggerRenderPlugin):
    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        return super().render(request, _patched(openapi_schema))


def openapi_config(*, version: str, secured: bool) -> OpenAPIConfig:
    """The document at ``/docs/openapi.json`` (OpenAPI 3.1) and its Swagger UI at ``/docs``.

    Swagger UI 5 (4 cannot read 3.1) is vendored in ``static/docs`` and served at
    ``/docs-assets``, so the docs work offline; Litestar's own default is a CDN. ``secured``:
    every operation needs the bearer API key."""
    return OpenAPIConfig(
        title="Switchboard",
        version=version,
        description="Correlation-routed multi-agent orchestration over NATS.",
        path="/docs",
        render_plugins=[
            ContractSwaggerRenderPlugin(
                path="/",
                favicon=FAVICON,
                js_url="/docs-assets/swagger-ui-bundle.js",
                css_url="/docs-assets/swagger-ui.css",
                standalone_preset_js_url="/docs-assets/swagger-ui-standalone-preset.js",
            ),
            ContractJsonRenderPlugin(path="/openapi.json"),
        ],
        components=Components(
            security_schemes={
                "bearer": SecurityScheme(
                    type="http", scheme="bearer", description="API key (none in local mode)"
                ),
            }
        ),
        security=[{"bearer": []}] if secured else None,
    )
