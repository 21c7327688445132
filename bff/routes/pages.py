"""What a browser loads: the chat page, its static files, and the docs' assets (offline)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from litestar import Router, get
from litestar.file_system import BaseLocalFileSystem
from litestar.response import File
from litestar.static_files import create_static_files_router
from litestar.types import PathType
from litestar.types.file_types import FileInfo

__all__ = ["DOCS_ASSETS", "STATIC", "index", "static_routers"]

STATIC = Path(__file__).parent.parent / "static"
#: Swagger UI 5 (renders OpenAPI 3.1), vendored unmodified from swagger-ui-dist: see its VERSION.
DOCS_ASSETS = STATIC / "docs"


@get("/", include_in_schema=False)
async def index() -> File:
    return File(
        STATIC / "index.html",
        content_disposition_type="inline",
        media_type="text/html; charset=utf-8",
    )


class _LocalFiles(BaseLocalFileSystem):
    """Local files, where a path no file can have (a NUL byte) is not found, not a 500."""

    async def info(self, path: PathType, **kwargs: Any) -> FileInfo:
        if "\x00" in str(path):
            raise FileNotFoundError(path)
        return await super().info(path, **kwargs)


def static_routers() -> list[Router]:
    """``/static`` (the page's files) and ``/docs-assets`` (Swagger UI, served locally)."""
    return [
        create_static_files_router(
            path="/static",
            directories=[STATIC],
            file_system=_LocalFiles(),
            include_in_schema=False,
            name="static",
        ),
        create_static_files_router(
            path="/docs-assets",
            directories=[DOCS_ASSETS],
            file_system=_LocalFiles(),
            include_in_schema=False,
            name="docs-assets",
        ),
    ]
