"""Training: losses and optimizers from the prescription, and the loop instruments attach to."""
