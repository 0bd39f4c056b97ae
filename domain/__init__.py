"""DeskFleet's domain: every rule (docs/rules.md) and every permission check lives here."""
