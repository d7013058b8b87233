"""ServiceDesk Plus stand-in: tickets, work notes, bearer auth.

Valid keys are every `api_key` of the `sdp-credentials` and `tenant-*-sdp`
secrets, re-read per request, plus keys issued through the control port
(`POST /keys`, see common.py): those stand for the technician key an MSP
generates in its own SDP console, which exists before the platform stores it
(onboarding checks it first). Any ticket id
exists (created on first read); notes are kept in memory and can be listed
through the API or, unauthenticated, on the control port (`GET /notes`).
A "poison" ticket (control `POST /poison`) carries a huge attachment.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from ..config import all_secret_values
from .common import Request, Response, StandIn

SUBJECTS = ("Printer offline", "Cannot log in to VPN", "Mailbox full", "Laptop running slow",
            "Shared drive unreachable", "Password reset")
POISON_ATTACHMENT_BYTES = 2 * 1024**3


def _ok(payload: dict[str, Any], status: int = 200) -> Response:
    return status, {"response_status": {"status_code": 2000, "status": "success"}, **payload}, {}


def _fail(status: int, code: int, message: str) -> Response:
    return status, {"response_status": {"status_code": code, "status": "failed",
                                        "messages": [{"status_code": code, "type": "failed",
                                                      "message": message}]}}, {}


class ServiceDeskPlus(StandIn):
    name = "sdp"

    def __init__(self) -> None:
        super().__init__("SDP_PORT", "SDP_CONTROL_PORT")
        self.tickets: dict[str, dict[str, Any]] = {}
        self.notes: dict[str, list[dict[str, Any]]] = {}
        self.poison: set[str] = set()
        self.data_lock = threading.Lock()

    def error_body(self, status: int) -> Any:
        messages = {401: (4001, "Invalid or expired token"), 403: (4004, "Permission denied"),
                    429: (4029, "Too many requests")}
        code, message = messages.get(status, (5000, "Internal server error"))
        return _fail(status, code, message)[1]

    def ticket(self, ticket_id: str) -> dict[str, Any]:
        with self.data_lock:
            if ticket_id not in self.tickets:
                digits = "".join(ch for ch in ticket_id if ch.isdigit()) or "0"
                self.tickets[ticket_id] = {
                    "id": ticket_id, "subject": SUBJECTS[int(digits) % len(SUBJECTS)],
                    "description": f"User reports: {SUBJECTS[int(digits) % len(SUBJECTS)].lower()}.",
                    "status": {"name": "Open"}, "priority": {"name": "Medium"},
                    "created_time": {"value": str(int(time.time() * 1000))}, "attachments": []}
            ticket = dict(self.tickets[ticket_id])
        if ticket_id in self.poison:
            ticket["attachments"] = [{"id": "1", "name": "memory.dmp", "size": POISON_ATTACHMENT_BYTES,
                                      "content_url": f"/api/v3/tickets/{ticket_id}/attachments/1"}]
        return ticket

    def handle(self, request: Request) -> Response:
        keys = all_secret_values("api_key", "tenant-") | all_secret_values("api_key", "sdp-credentials")
        if not self.key_valid(request.bearer, keys):
            return _fail(401, 4001, "Invalid or expired token")
        parts = request.path.strip("/").split("/")
        if parts[:3] != ["api", "v3", "tickets"]:
            return _fail(404, 4000, "Resource not found")
        if len(parts) == 3 and request.method == "GET":
            with self.data_lock:
                ids = list(self.tickets)[-100:]
            return _ok({"tickets": [self.ticket(i) for i in ids],
                        "list_info": {"row_count": len(ids), "has_more_rows": False}})
        ticket_id = parts[3] if len(parts) > 3 else ""
        if len(parts) == 4 and request.method == "GET":
            return _ok({"ticket": self.ticket(ticket_id)})
        if len(parts) == 5 and parts[4] == "notes":
            if request.method == "POST":
                note = request.json().get("note") or {}
                if not note.get("description"):
                    return _fail(400, 4012, "note.description is required")
                with self.data_lock:
                    notes = self.notes.setdefault(ticket_id, [])
                    stored = {"id": str(len(notes) + 1), "description": note["description"],
                              "show_to_requester": bool(note.get("show_to_requester", False)),
                              "created_time": {"value": str(int(time.time() * 1000))}}
                    notes.append(stored)
                return _ok({"note": stored}, 201)
            with self.data_lock:
                return _ok({"notes": list(self.notes.get(ticket_id, []))})
        if len(parts) == 6 and parts[4] == "attachments" and ticket_id in self.poison:
            # Streamed as one huge body: a client that reads it into memory dies.
            # Healing the poison (DELETE /poison) ends the streams in flight too,
            # so no worker is killed by it after `sandbox heal poison-job`.
            return 200, _Stream(POISON_ATTACHMENT_BYTES, alive=lambda: ticket_id in self.poison), \
                {"Content-Type": "application/octet-stream"}
        return _fail(404, 4000, "Resource not found")

    def control(self, request: Request) -> Response | None:
        if request.path == "/notes":
            with self.data_lock:
                return 200, {"notes": self.notes}, {}
        if request.path == "/poison":
            ticket_id = request.json().get("ticket_id", "") if request.method != "GET" else ""
            with self.data_lock:
                if request.method == "POST":
                    self.poison.add(ticket_id)
                elif request.method == "DELETE":
                    self.poison.clear()
                return 200, {"poison": sorted(self.poison)}, {}
        return None


class _Stream(bytes):
    """Marker body: served in chunks instead of built in memory, for as long
    as `alive()` holds."""

    def __new__(cls, size: int, alive: Callable[[], bool] | None = None) -> "_Stream":
        instance = super().__new__(cls, b"")
        instance.size = size  # type: ignore[attr-defined]
        instance.alive = alive  # type: ignore[attr-defined]
        return instance


if __name__ == "__main__":
    ServiceDeskPlus().serve()
