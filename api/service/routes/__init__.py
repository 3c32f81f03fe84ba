"""The service's routes, one module per audience."""
