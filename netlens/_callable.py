"""`netlens.paraxial(...)`, `netlens.simulate(...)`, `netlens.diagnose(...)`, `netlens.optimize(...)`.

Those four names are also the package's modules (`netlens.simulate` is where simulation lives),
and Python's import system sets a submodule as an attribute of its package whenever it is
imported, so a function of the same name in `netlens/__init__.py` would be replaced by the module
at the first `from netlens.simulate import …`. Instead each of these modules is callable: calling
it calls the API function of the same name in `netlens.api`, and everything else about the
module (its functions, `monkeypatch.setattr`, `import netlens.simulate`) is unchanged.
"""
from __future__ import annotations

import sys
import types


def callable_module(module: str, api_name: str) -> None:
    mod = sys.modules[module]

    class CallableModule(types.ModuleType):
        def __call__(self, *args, **kwargs):
            from netlens import api

            return getattr(api, api_name)(*args, **kwargs)

    CallableModule.__call__.__doc__ = f"Calls `netlens.api.{api_name}`; see its docstring."
    CallableModule.__name__ = f"{api_name} (a callable module: netlens.api.{api_name})"
    mod.__class__ = CallableModule
