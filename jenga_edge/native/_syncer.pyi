"""fsync off the GIL for jenga_edge.sinks (native/_syncer.c)."""

from typing import final

from _typeshed import FileDescriptorLike

@final
class Syncer:
    """fsync requests served by a thread that never takes the GIL. A failed fsync
    is raised as OSError by the next check() or wait(). After fork() it refuses
    work (RuntimeError)."""

    def __init__(self) -> None: ...
    def request(self, fd: FileDescriptorLike, /) -> None:
        """fsync fd on the syncer thread, soon (coalesced with any pending request)."""

    def check(self) -> None:
        """Raise a finished fsync's error (once)."""

    def wait(self) -> None:
        """Until every request so far is done (the GIL released)."""

    def stop(self) -> None:
        """Finish pending requests, end the thread."""
