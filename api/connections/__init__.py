"""GraphQL for connections and gateways."""
