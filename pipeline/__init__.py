"""Pipeline definition, configuration and shared constants."""
