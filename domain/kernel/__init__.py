"""What every context shares and nothing depends on: errors, settings, the clock, input validation, versions, principals and the role/privilege tables (R12, R13)."""
