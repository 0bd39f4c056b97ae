"""Webhooks (R43)."""
