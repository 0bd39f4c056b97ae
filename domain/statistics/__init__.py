"""Fleet statistics: rollups kept as runs and machines change, and the trends read from them."""
