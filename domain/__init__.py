"""DeskFleet's domain: every rule (R1-R37) and every permission check lives here."""
