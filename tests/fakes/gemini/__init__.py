"""A faithful fake of the Gemini Developer API's image generation, for tests and manual runs."""

from .faults import Fault
from .models import DEFAULT_MODELS, ModelSpec
from .server import FakeGemini, RecordedRequest

__all__ = ["DEFAULT_MODELS", "FakeGemini", "Fault", "ModelSpec", "RecordedRequest"]
