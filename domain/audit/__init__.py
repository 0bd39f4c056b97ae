"""The audit trail: written by each use case inside its transaction (journal), read by environment admins (trail)."""
