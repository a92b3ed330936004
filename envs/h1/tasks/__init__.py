"""The H1 task modules; importing this package imports each of them, registering every task in
`envs.h1.task.TASKS` (a new module here needs no edit elsewhere)."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
