"""Session-lock recommendations: runs blocked by a locked or disconnected session, and the actions on them (R31-R34)."""
