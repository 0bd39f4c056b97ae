"""What each live subscription may see, and how it stays current (R35, R36)."""
