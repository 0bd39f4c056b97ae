"""How data is kept, and no rules: engines and sessions, tables (models/), migrations, statement caching, the SQLite driver, WAL checkpoints, pagination cursors, the queue lock."""
