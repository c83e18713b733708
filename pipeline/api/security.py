"""Who may call the API, and how much they may send.

- A bearer token, when one is configured, is required on every API route but `/healthz`.
  The comparison takes constant time. The dashboard's pages and static files carry no data
  and stay public; the data they show comes from the API with the token the user enters.
- Request bodies are capped (Content-Length checked up front, streamed bodies counted) and
  answered with 413 past the limit.
"""

from __future__ import annotations

import hmac
import json

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

_bearer = HTTPBearer(auto_error=False, description="the service's API token "
                     "(PIPELINE_API_TOKEN or --token-file)")


class TokenAuth:
    """FastAPI dependency: 401 unless the request carries the configured token."""

    def __init__(self, token: str | None):
        self._token = token.encode() if token else None

    async def __call__(self, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
                       ) -> None:
        if self._token is None:
            return
        if credentials is None or credentials.scheme.lower() != "bearer" or \
                not hmac.compare_digest(credentials.credentials.encode(), self._token):
            raise HTTPException(401, "missing or wrong API token; send "
                                     "`Authorization: Bearer <token>`",
                                headers={"WWW-Authenticate": "Bearer"})


class BodySizeLimit:
    """ASGI middleware: refuse request bodies larger than `max_bytes` with 413."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = True
                if too_big:
                    return await self._refuse(send)
        received = 0
        refused = False

        async def limited_receive():
            nonlocal received, refused
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    refused = True
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _TooLarge:
            if refused:
                await self._refuse(send)

    async def _refuse(self, send) -> None:
        body = json.dumps({"detail": f"request body larger than {self.max_bytes} bytes"})
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body.encode()})


class _TooLarge(Exception):
    pass
