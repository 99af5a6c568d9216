"""The Responses backend: request building, upstream I/O, the pure stream translator."""
