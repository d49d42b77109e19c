"""`python -m bench`: what the bot itself costs next to the model, measured against the loopback fakes."""
