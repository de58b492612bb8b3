"""Errors raised by the fault proxy.

ProxyError                  base of everything the proxy raises
├── ApiError                an API failure with its Toxiproxy message and HTTP status
└── ServerStartError        the proxy server could not start (bind failure, bad config)
"""

from __future__ import annotations


class ProxyError(Exception):
    """Base class of every error the fault proxy raises."""


class ApiError(ProxyError):
    """An API failure carrying Toxiproxy's message and HTTP status code."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def joined(self, detail: str) -> ApiError:
        """Return this error with `: detail` appended, as Toxiproxy's joinError does."""
        return ApiError(f"{self.message}: {detail}", self.status)

    def to_json(self) -> dict[str, object]:
        return {"error": self.message, "status": self.status}


class ServerStartError(ProxyError):
    """The proxy server could not start; the message says why."""


def bad_request_body(detail: str) -> ApiError:
    return ApiError(f"bad request body: {detail}", 400)


def missing_field(detail: str) -> ApiError:
    return ApiError(f"missing required field: {detail}", 400)


def proxy_not_found() -> ApiError:
    return ApiError("proxy not found", 404)


def proxy_already_exists() -> ApiError:
    return ApiError("proxy already exists", 409)


def invalid_stream() -> ApiError:
    return ApiError("stream was invalid, can be either upstream or downstream", 400)


def invalid_toxic_type() -> ApiError:
    return ApiError("invalid toxic type", 400)


def toxic_already_exists() -> ApiError:
    return ApiError("toxic already exists", 409)


def toxic_not_found() -> ApiError:
    return ApiError("toxic not found", 404)
