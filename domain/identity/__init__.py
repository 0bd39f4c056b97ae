"""People and credentials: users, API tokens, machine keys, security roles per environment, the first run."""
