"""bananabot: Gemini image models in Discord and Slack threads (platform-neutral core)."""

__version__ = "0.1.0"
