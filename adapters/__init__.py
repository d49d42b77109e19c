"""Platform adapters: translate platform events to invocations and replies back."""
