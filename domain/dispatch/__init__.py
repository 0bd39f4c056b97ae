"""The dispatcher: assigns queued runs to free bots and sweeps timeouts and lost machines (R25-R30, R33)."""
