"""GraphQL subscriptions (R35-R37)."""
