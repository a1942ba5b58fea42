"""Channel adapters: one module per channel, each declaring its own limits."""
