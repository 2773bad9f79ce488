"""`a100m view`: the viewer's page served over HTTP (Starlette + uvicorn), loopback by default.

Routes: `/` and the page's own files, `/data/<name>.js` (from the catalog), `/media/<N>` (the
catalog's video N: the file with HTTP Range support, or a redirect to a presigned S3 URL). Nothing
else is served: a video is offered only if the catalog matched it inside the given roots.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from .catalog import Catalog, is_video_file
from .site import ASSETS, PAGE_FILES, PRESIGN_SECONDS, data_file

MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css"}


LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def allowed_hosts(host: str) -> list[str]:
    """The Host headers the server answers: the address it serves (its loopback names when it
    serves loopback). A page of another site that resolves its own name to this address (DNS
    rebinding) sends its own name and is refused. Bound to every address (0.0.0.0, ::), any name."""
    if host in ("0.0.0.0", "::", ""):
        return ["*"]
    return list(LOOPBACK) if host in LOOPBACK else [host]


def build_app(catalog: Catalog, hosts: Sequence[str] = LOOPBACK) -> Any:
    """The viewer's web app over `catalog`, answering requests addressed to `hosts` only."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
    from starlette.routing import Route

    def media_url(number: int) -> str | None:
        return f"media/{number}" if catalog.videos[number].source else None

    # Each data file is made on its first request, the last few kept: starting costs nothing per
    # video, and memory stays bounded however many videos are browsed.
    data = functools.lru_cache(maxsize=32)(lambda name: data_file(catalog, name, media_url))
    is_video = functools.lru_cache(maxsize=1024)(is_video_file)  # a container opened once per file
    # Only the page's own scripts run (no inline script, nothing from elsewhere); videos may come
    # from a presigned S3 URL.
    csp = "default-src 'self'; script-src 'self'; style-src 'self'; media-src 'self' https: http:; object-src 'none'"
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff", "Content-Security-Policy": csp}

    async def page(request: Request) -> Response:
        name = request.path_params.get("name", "index.html")
        if name not in PAGE_FILES:
            return PlainTextResponse("not found", status_code=404)
        suffix = name[name.rfind(".") :]
        return FileResponse(ASSETS / name, media_type=MEDIA_TYPES[suffix], headers=headers)

    async def serve_data(request: Request) -> Response:
        text = data(request.path_params["name"])
        if text is None:
            return PlainTextResponse("not found", status_code=404)
        return Response(text, media_type=MEDIA_TYPES[".js"], headers=headers)

    async def media(request: Request) -> Response:
        number = request.path_params["number"]
        if not 0 <= number < len(catalog.videos) or catalog.store is None:
            return PlainTextResponse("not found", status_code=404)
        source = catalog.videos[number].source
        if source is None:
            return PlainTextResponse("this video has no file", status_code=404)
        if source.startswith("s3://"):
            return RedirectResponse(catalog.store.presigned_get(source, PRESIGN_SECONDS), status_code=307)
        path = catalog.store.resolve(source).path  # checked again: inside the roots, no symlink out
        if not is_video(path):
            return PlainTextResponse("not found", status_code=404)  # a manifest named a file that is no video
        return FileResponse(path, headers={"X-Content-Type-Options": "nosniff"})

    routes = [
        Route("/", page),
        Route("/{name:str}", page),
        Route("/data/{name:str}.js", serve_data),
        Route("/media/{number:int}", media),
    ]
    return Starlette(routes=routes, middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=list(hosts))])


def serve(catalog: Catalog, host: str = "127.0.0.1", port: int = 8765) -> None:
    import uvicorn

    print(f"viewer: http://{host}:{port}/  ({len(catalog.videos)} videos; Ctrl-C stops it)", flush=True)
    uvicorn.run(build_app(catalog, allowed_hosts(host)), host=host, port=port, log_level="warning")
