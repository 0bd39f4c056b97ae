"""GraphQL for the fleet: environments, machines, groups, maintenance, sharing."""
