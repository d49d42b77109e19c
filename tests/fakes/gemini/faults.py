"""Scriptable failures (reference §5.4, §8.2, checklist §12.8): HTTP errors, transport faults and content outcomes."""

from __future__ import annotations

import enum
import re

from .errors import TROUBLESHOOTING, ApiError, invalid


class Fault(enum.Enum):
    """One scripted outcome. Queue it with `FakeGemini.enqueue` or write `[fault:<value>]` in the prompt."""

    RATE_LIMIT = "rate_limit"  # 429 per-minute quota, QuotaFailure + RetryInfo
    RATE_LIMIT_DAILY = "rate_limit_daily"  # 429 whose quotaId contains PerDay
    INTERNAL = "internal"  # 500
    OVERLOADED = "overloaded"  # 503 "The model is overloaded. Please try again later."
    DEADLINE = "deadline"  # 504
    HANG = "hang"  # never answers (until the server stops)
    RESET = "reset"  # closes the TCP connection without an HTTP response
    MALFORMED_JSON = "malformed_json"  # 200 whose body is not JSON
    STREAM_ERROR = "stream_error"  # streaming: one chunk, then a {"error": …} event; otherwise a 500
    IMAGE_SAFETY = "image_safety"
    IMAGE_PROHIBITED_CONTENT = "image_prohibited_content"
    IMAGE_RECITATION = "image_recitation"
    IMAGE_OTHER = "image_other"
    NO_IMAGE = "no_image"  # finishReason NO_IMAGE with a text part
    TEXT_ONLY = "text_only"  # finishReason STOP, text only
    BLOCKED_PROMPT = "blocked_prompt"  # promptFeedback.blockReason PROHIBITED_CONTENT, no candidates

    @property
    def is_http(self) -> bool:
        """Played before per-model validation, like Google's front end; the others replace a generation."""
        return self in _HTTP_FAULTS


_HTTP_FAULTS = frozenset(
    {
        Fault.RATE_LIMIT, Fault.RATE_LIMIT_DAILY, Fault.INTERNAL, Fault.OVERLOADED, Fault.DEADLINE, Fault.HANG,
        Fault.RESET, Fault.MALFORMED_JSON,
    }
)  # fmt: skip

IMAGE_BLOCKS: dict[Fault, str] = {
    Fault.IMAGE_SAFETY: (
        "Unable to show the generated image. The image was filtered out because it violated Google's "
        "[Generative AI Prohibited Use policy](https://policies.google.com/terms/generative-ai/use-policy). "
        "You will not be charged for blocked images. Try rephrasing the prompt. If you think this was an error, "
        "[send feedback](https://ai.google.dev/gemini-api/docs/troubleshooting)."
    ),
    Fault.IMAGE_PROHIBITED_CONTENT: (
        "Unable to show the generated image. The prompt contains sensitive words that violate Google's Responsible "
        "AI practices. Try rephrasing the prompt. If you think this was an error, send feedback. "
        "Support code: 42876398."
    ),
    Fault.IMAGE_RECITATION: (
        "Unable to show the generated image. The image was filtered out because it may be a recitation of existing "
        "material. You will not be charged for blocked images. Try rephrasing the prompt."
    ),
    Fault.IMAGE_OTHER: "Unable to show the generated image. Image generation stopped for an unspecified reason.",
}

INTERNAL_MESSAGE = f"An internal error has occurred. Please retry or report in {TROUBLESHOOTING}"
_MARKER = re.compile(r"\[fault:([A-Za-z_]+)\]")
_DURATION = re.compile(r"\d+(\.\d+)?s")


def fault_in_prompt(prompt: str) -> Fault | None:
    """The fault named by a `[fault:name]` marker; an unknown name is a loud 400 so typos don't pass silently."""
    match = _MARKER.search(prompt)
    if match is None:
        return None
    try:
        return Fault(match.group(1).lower())
    except ValueError:
        known = ", ".join(f.value for f in Fault)
        raise invalid(f"fake-gemini: unknown fault marker [fault:{match.group(1)}]; known: {known}") from None


def check_duration(retry_delay: str) -> str:
    if not _DURATION.fullmatch(retry_delay):
        raise ValueError(f"retry_delay must be a proto Duration like '1s' or '1.357s', not {retry_delay!r}")
    return retry_delay


def http_error(fault: Fault, *, model: str, retry_delay: str) -> ApiError:
    """The HTTP error a fault answers with (HANG, RESET and MALFORMED_JSON are played by the server)."""
    if fault in (Fault.RATE_LIMIT, Fault.RATE_LIMIT_DAILY):
        return _rate_limit(daily=fault is Fault.RATE_LIMIT_DAILY, model=model, retry_delay=retry_delay)
    if fault in (Fault.INTERNAL, Fault.STREAM_ERROR):
        return ApiError(500, INTERNAL_MESSAGE)
    if fault is Fault.OVERLOADED:
        return ApiError(503, "The model is overloaded. Please try again later.")
    if fault is Fault.DEADLINE:
        return ApiError(504, "Deadline expired before operation could complete.")
    raise ValueError(f"{fault} is not an HTTP error")


def _rate_limit(*, daily: bool, model: str, retry_delay: str) -> ApiError:
    metric = "generativelanguage.googleapis.com/generate_content_paid_tier_requests"
    period, limit = ("Day", 250) if daily else ("Minute", 10)
    message = (
        "You exceeded your current quota, please check your plan and billing details. For more information on this "
        "error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To monitor your current usage, head to: "
        f"https://ai.dev/usage?tab=rate-limit. \n* Quota exceeded for metric: {metric}, limit: {limit}, model: {model}"
        f"\nPlease retry in {retry_delay}."
    )
    details = [
        {
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [
                {
                    "description": "Learn more about Gemini API quotas",
                    "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                }
            ],
        },
        {
            "@type": "type.googleapis.com/google.rpc.QuotaFailure",
            "violations": [
                {
                    "quotaMetric": metric,
                    "quotaId": f"GenerateRequestsPer{period}PerProjectPerModel",
                    "quotaDimensions": {"model": model, "location": "global"},
                    "quotaValue": str(limit),
                }
            ],
        },
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": retry_delay},
    ]
    return ApiError(429, message, details=details)
