"""Keys, certificates and XML signatures."""
