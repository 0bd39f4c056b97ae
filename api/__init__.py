"""DeskFleet's GraphQL API: thin translation between GraphQL and the domain's use cases."""
