"""Gemini generateContent client for image models: wire types, outcomes, errors, retries."""

from bot.gemini.client import GeminiClient
from bot.gemini.errors import GeminiError
from bot.gemini.outcomes import Outcome
from bot.gemini.parts import Content, Part
from bot.gemini.request import ImageRequest, UnsupportedOptionError
from bot.gemini.retry import RetryPolicy

__all__ = [
    "Content",
    "GeminiClient",
    "GeminiError",
    "ImageRequest",
    "Outcome",
    "Part",
    "RetryPolicy",
    "UnsupportedOptionError",
]
