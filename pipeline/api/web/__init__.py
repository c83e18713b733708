"""The dashboard: three pages and their scripts, served from this package (no CDN).

The pages hold no data and need no token; their scripts fetch everything from the API with
the token the user enters (kept in the browser's localStorage). A strict Content Security
Policy allows only this service's own scripts.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

WEB_DIR = Path(__file__).parent
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'; form-action 'self'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}


def _page(name: str) -> FileResponse:
    return FileResponse(WEB_DIR / name, media_type="text/html", headers=HEADERS)


def web_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def home():
        return RedirectResponse("/ui/")

    @router.get("/ui/")
    async def jobs_page():
        return _page("index.html")

    @router.get("/ui/submit")
    async def submit_page():
        return _page("submit.html")

    @router.get("/ui/jobs/{job_id}")
    async def job_page(job_id: str):
        return _page("job.html")

    return router


def mount_static(app) -> None:
    app.mount("/ui/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
