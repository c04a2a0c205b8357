"""Building the torch network a prescription describes (design → model)."""
from netlens.model.build import Network, build_network

__all__ = ["Network", "build_network"]
