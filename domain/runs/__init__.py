"""Desktop flows and their runs: triggering, queues, wait reasons, the candidate rule, what the machine runtime reports (R23-R30)."""
