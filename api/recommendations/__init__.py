"""GraphQL for session-lock recommendations."""
