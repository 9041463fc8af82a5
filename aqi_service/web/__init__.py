"""The web layer: app factory, resources' lifetimes, routes, the error envelope."""
