"""ASGI middleware: every request body parsed by the one strict JSON loader, off the event loop."""

from __future__ import annotations

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.service.problems import MALFORMED_JSON, problem_response
from ledger import InvalidDocumentError, load_json_bytes

# The applicant's page and the workbench (no JavaScript) post urlencoded forms; their routes
# parse them, bounded.
FORM_PATHS = ("/applicant/", "/workbench/")


def _page_form(scope: Scope) -> bool:
    content_type: bytes = dict(scope["headers"]).get(b"content-type", b"")
    path: str = scope["path"]
    return path.startswith(FORM_PATHS) and content_type.startswith(
        b"application/x-www-form-urlencoded"
    )


class JsonBodyMiddleware:
    """Refuses a body that is not strict JSON with a 400 `malformed-json` problem before any
    route, FastAPI's body models included, sees it.

    Every body of this service is JSON (but the forms of the applicant's page and the
    workbench, `FORM_PATHS`), so each goes through `ledger.load_json_bytes` (duplicate keys,
    NUL, lone surrogates and deep nesting refused, linear time) whatever its content type:
    FastAPI's own parser lets the last duplicate key win. Parsing runs in a worker thread so
    that no body, however shaped, holds up the event loop and with it `/healthz` and every
    other request. Inside the body limit: the body is bounded here. The parsed value is left
    in the scope's state as `json_body`.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if body and not _page_form(scope):
            try:
                parsed = await anyio.to_thread.run_sync(load_json_bytes, bytes(body))
            except InvalidDocumentError as exc:
                request_id = scope.get("state", {}).get("request_id")
                response = problem_response(MALFORMED_JSON, str(exc), request_id=request_id)
                await response(scope, receive, send)
                return
            scope.setdefault("state", {})["json_body"] = parsed
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)
