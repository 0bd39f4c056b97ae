"""Desktop-flow connections to a machine or group, their write-only credentials, legacy gateways (R20-R22)."""
