"""Registries of typed kinds: the sources, sinks and actions an agent config can name.

A kind is one module that defines

* `Config`: its settings, a Struct tagged with the kind's name (a config entry's
  `type: tcp` picks `sources/tcp.py`'s Config), checked when the file loads;
* `build(config, context)`: the running thing (a Source, a Sink, an Action).

A registry lists the modules, in sources/__init__.py, sinks/__init__.py and
actions/__init__.py::

    KINDS = Kinds("source", [stdin, file, tcp, udp, unix])

so a new kind is one module plus its name in that list (or `KINDS.register(module)`
from your own code, before the config is loaded). The agent config's types
are built from the registries when a config is loaded (config.py), so a
registered kind is validated, documented and built like the others.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar, Generic, Protocol, TypeVar, Union

from .contract.typed import Config

T = TypeVar("T", covariant=True)


class TaggedConfig(Config, tag_field="type", kw_only=True):
    """Base of a kind's Config: the `type` key names the kind."""

    # Fields holding file paths: a relative one resolves against the config file's directory.
    paths: ClassVar[tuple[str, ...]] = ()

    def written_files(self, name: str) -> dict[str, str]:
        """Key -> file this entry (named `name` in the config) writes: two entries must not
        write one file (config.py refuses it)."""
        return {}

    @property
    def kind(self) -> str:
        return str(self.__struct_config__.tag)


def _check_shared_fields(cfg: type[TaggedConfig], what: str) -> None:
    """A kind may not redefine a setting every kind of its stage shares (a sink's or action's
    `queue`): the agent reads it with the shared meaning."""
    own = set(inspect.get_annotations(cfg))
    for base in cfg.__mro__[1:]:
        if isinstance(base, type) and issubclass(base, TaggedConfig) and base is not TaggedConfig:
            clash = sorted(own & set(inspect.get_annotations(base)))
            if clash:
                raise TypeError(
                    f"{cfg.__name__}: {', '.join(clash)} is a setting every {what} kind has "
                    f"({base.__name__}); give yours another name"
                )


class KindModule(Protocol[T]):
    """What a kind's module provides (a module, or any object with these names)."""

    @property
    def Config(self) -> type[TaggedConfig]: ...

    def build(self, config: Any, context: Any) -> T: ...


class Kinds(Generic[T]):
    """The kinds of one stage, by name (their Config's tag), in registration order."""

    def __init__(self, what: str, modules: Iterable[KindModule[T]] = ()):
        self.what = what
        self._by_name: dict[str, KindModule[T]] = {}
        self.version = 0  # bumped by register(), so cached config types are rebuilt
        for m in modules:
            self.register(m)

    def register(self, module: KindModule[T]) -> KindModule[T]:
        cfg = getattr(module, "Config", None)
        if not (isinstance(cfg, type) and issubclass(cfg, TaggedConfig)) or not callable(
            getattr(module, "build", None)
        ):
            raise TypeError(f"a {self.what} kind needs a `Config` (a TaggedConfig subclass with a tag) and a `build`")
        name = cfg.__struct_config__.tag
        if not isinstance(name, str) or not name:
            raise TypeError(f"{cfg.__name__}: give it a tag, e.g. class Config(..., tag='mykind')")
        _check_shared_fields(cfg, self.what)
        if name in self._by_name and self._by_name[name] is not module:
            raise ValueError(f"a {self.what} kind named {name!r} is already registered")
        self._by_name[name] = module
        self.version += 1
        return module

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def __iter__(self) -> Iterator[KindModule[T]]:
        """The registered kinds' modules, in registration order."""
        return iter(list(self._by_name.values()))

    def union(self) -> Any:
        """The tagged union of every registered Config (what a config entry may be)."""
        configs = tuple(m.Config for m in self)
        return configs[0] if len(configs) == 1 else Union[configs]  # noqa: UP007 - built at run time

    def build(self, config: TaggedConfig, context: Any = None) -> T:
        module = self._by_name.get(config.kind)
        if module is None or not isinstance(config, module.Config):
            raise TypeError(f"no {self.what} kind registered for {type(config).__name__}")
        return module.build(config, context)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name


def default_types(entries: Any, kinds: Kinds[Any]) -> Any:
    """A mapping of named entries (sinks, actions) where an entry named after a kind
    may leave out its `type` (`sinks: {jsonl: {path: ...}}`), and a null entry is
    off (`--set sinks.syslog=null` turns a profile's sink off); a copy with the
    types filled in and the null entries left out."""
    if not isinstance(entries, dict):
        return entries
    out = {}
    for name, entry in entries.items():
        if entry is None:
            continue
        if isinstance(entry, dict) and "type" not in entry and name in kinds:
            entry = {"type": name, **entry}
        out[name] = entry
    return out
