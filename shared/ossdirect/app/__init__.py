"""The edge: Function Compute events in, HTTP answers out."""
