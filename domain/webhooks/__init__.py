"""Webhooks (R43): signed, retried, logged deliveries of what happens in an environment."""
