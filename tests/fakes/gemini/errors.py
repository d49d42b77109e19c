"""Google-style error bodies (reference §8.1, §8.2) and the exception that carries them."""

from __future__ import annotations

from typing import Any

STATUS_BY_CODE = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

TROUBLESHOOTING = "https://developers.generativeai.google/guide/troubleshooting"
BAD_IMAGE = f"Unable to process input image. Please retry or report in {TROUBLESHOOTING}"
UNREGISTERED_CALLER = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
INVALID_KEY = "API key not valid. Please pass a valid API key."


class ApiError(Exception):
    """An error the fake answers with: HTTP code, google.rpc status, message and optional details."""

    def __init__(self, code: int, message: str, *, status: str | None = None, details: list[Any] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or STATUS_BY_CODE[code]
        self.details = details

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


def invalid(message: str) -> ApiError:
    return ApiError(400, message)


def field_violation(field: str, message: str) -> ApiError:
    """A 400 for a bad request field, with the BadRequest detail Google attaches to JSON-mapping errors."""
    violation = {"field": field, "description": message} if field else {"description": message}
    detail = {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [violation]}
    return ApiError(400, message, details=[detail])


def request_violation(path: str, problem: str) -> ApiError:
    """A semantic check on one field, in the style `* GenerateContentRequest.<path>: <problem>\\n`."""
    return ApiError(400, f"* GenerateContentRequest.{path}: {problem}\n")


def one_of(values: tuple[str, ...]) -> str:
    quoted = [f"'{v}'" for v in values]
    if len(quoted) <= 2:
        return " or ".join(quoted)
    return ", ".join(quoted[:-1]) + f", or {quoted[-1]}"


def api_key_invalid() -> ApiError:
    return ApiError(
        400,
        INVALID_KEY,
        details=[
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": "generativelanguage.googleapis.com"},
            },
            {"@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": INVALID_KEY},
        ],
    )


def model_not_found(model: str) -> ApiError:
    return ApiError(
        404,
        f"models/{model} is not found for API version v1beta, or is not supported for generateContent. "
        "Call ListModels to see the list of available models and their supported methods.",
    )
