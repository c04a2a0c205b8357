"""The paraxial model: mean-field propagation of signal and gradient scales through a network."""
