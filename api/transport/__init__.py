"""How requests reach the schema: HTTP and websocket transports, limits, deadlines, abuse guards, shared execution."""
