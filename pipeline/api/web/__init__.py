"""The dashboard: three pages and their scripts, served from this package (no CDN).

Each page file holds only its `<main>`; `frame.html` holds what every page shares (head,
navigation, token form) and is filled in once per process.

The pages hold no data and need no token; their scripts fetch everything from the API with
the token the user enters (kept in the browser's localStorage). A strict Content Security
Policy allows only this service's own scripts.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles

WEB_DIR = Path(__file__).parent
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'; form-action 'self'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}


TITLES = {"jobs": "Jobs", "job": "Job", "submit": "Submit"}


@cache
def render(page: str) -> str:
    """The full HTML of `page` (jobs, job or submit): its `<main>` inside the shared frame."""
    html = (WEB_DIR / "frame.html").read_text(encoding="utf-8")
    for key, value in (("title", TITLES[page]), ("page", page),
                       ("jobs_current", ' aria-current="page"' if page == "jobs" else ""),
                       ("submit_current", ' aria-current="page"' if page == "submit" else ""),
                       ("main", (WEB_DIR / f"{page}.html").read_text(encoding="utf-8").strip())):
        html = html.replace("{{" + key + "}}", value)
    return html


def _page(page: str) -> HTMLResponse:
    return HTMLResponse(render(page), headers=HEADERS)


def web_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def home():
        return RedirectResponse("/ui/")

    @router.get("/ui/")
    async def jobs_page():
        return _page("jobs")

    @router.get("/ui/submit")
    async def submit_page():
        return _page("submit")

    @router.get("/ui/jobs/{job_id}")
    async def job_page(job_id: str):
        return _page("job")

    return router


def mount_static(app) -> None:
    app.mount("/ui/static", StaticFiles(directory=WEB_DIR / "static"), name="static")
