"""Source modules: one billing-export format per module, all mapping to FOCUS 1.2 (see :mod:`.base`)."""

from __future__ import annotations

import importlib

from .base import Source, StagedSource, register, registry

#: Modules that define sources; each registers itself on import. Order = detection priority.
SOURCE_MODULES = (
    "finops_kit.sources.focus",
    "finops_kit.sources.aws_cur",
    "finops_kit.sources.aws_cur2",
    "finops_kit.sources.gcp",
    "finops_kit.sources.azure",
    "finops_kit.sources.oci",
)


for _mod in SOURCE_MODULES:
    importlib.import_module(_mod)
_load_all = True

__all__ = ["Source", "StagedSource", "register", "registry"]
