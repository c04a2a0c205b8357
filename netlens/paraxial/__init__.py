"""The paraxial model: mean-field propagation of signal and gradient scales through a network."""

from netlens._callable import callable_module  # noqa: E402  `netlens.paraxial(...)` is the API call

callable_module(__name__, "paraxial")
