"""Trusted documents: the GraphQL documents an installation accepts when it accepts no others."""
