"""GraphQL for people: users, tokens, roles."""
