"""Integrations with training frameworks (optional extras): `netlens.integrations.lightning`."""
