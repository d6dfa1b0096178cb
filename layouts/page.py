"""The page registry: what a page declares and what its layout receives."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType

from app.security.permissions import Permission

#: Sections of the navigation, in display order.
SECTIONS = ("Main", "Model", "Monitoring", "Labs", "Admin")


@dataclass(frozen=True)
class PageSpec:
    """What the shell needs to list, route and protect a page."""

    path: str
    title: str
    permission: Permission
    section: str = "Model"
    order: int = 100
    icon: str = "bi-circle"
    description: str = ""
    nav: bool = True

    def __post_init__(self):
        if not self.path.startswith("/"):
            raise ValueError(f"page path must start with '/': {self.path!r}")
        if self.section not in SECTIONS:
            raise ValueError(f"unknown section {self.section!r}; use one of {SECTIONS}")


@dataclass(frozen=True)
class PageContext:
    """What a layout may know about the request: the user and the (untrusted) query."""

    username: str
    role: str
    query: dict[str, str] = field(default_factory=dict)
    can: Callable[..., bool] = lambda permission, model=None: False
    visible_models: Callable[..., set[str] | None] = lambda permission: set()


@dataclass(frozen=True)
class Page:
    """A discovered page: its stem, spec and layout module."""

    stem: str
    spec: PageSpec
    module: ModuleType

    @property
    def nav_id(self) -> str:
        """Return the id of this page's navigation link."""
        return f"nav-{self.stem.replace('_', '-')}"


def discover_pages() -> list[Page]:
    """Import every layout module that declares ``PAGE`` and return them in nav order."""
    import layouts

    pages = []
    for info in pkgutil.iter_modules(layouts.__path__):
        if info.name.startswith("_") or info.name in {"page", "shell"}:
            continue
        module = importlib.import_module(f"layouts.{info.name}")
        spec = getattr(module, "PAGE", None)
        if isinstance(spec, PageSpec):
            pages.append(Page(info.name, spec, module))
    paths = [p.spec.path for p in pages]
    duplicates = {p for p in paths if paths.count(p) > 1}
    if duplicates:
        raise RuntimeError(f"two pages claim the same path: {sorted(duplicates)}")
    return sorted(pages, key=lambda p: (SECTIONS.index(p.spec.section), p.spec.order, p.spec.title))
