"""The event bus (published after commit) and live views over it: a snapshot, then changes (R35, R36)."""
