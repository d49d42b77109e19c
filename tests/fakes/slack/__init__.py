"""A faithful fake of Slack (Web API, uploads, file hosting, signed HTTP events, Socket Mode) for tests."""

from .delivery import Delivery
from .events import Workspace
from .recording import RecordedCall
from .server import CHANNEL, HUMAN, OTHER_CHANNEL, OTHER_HUMAN, FakeSlack
from .socket_mode import Ack
from .state import Upload

__all__ = [
    "CHANNEL",
    "HUMAN",
    "OTHER_CHANNEL",
    "OTHER_HUMAN",
    "Ack",
    "Delivery",
    "FakeSlack",
    "RecordedCall",
    "Upload",
    "Workspace",
]
