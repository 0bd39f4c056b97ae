"""GraphQL for desktop flows, runs and the machine runtime's own operations."""
