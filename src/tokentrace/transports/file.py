"""Append spans to a JSONL file, one ``write`` per batch so lines never interleave."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from .. import _fork
from ..spans import encode_lines
from .base import Transport

if TYPE_CHECKING:
    from ..spans import Span

__all__ = ["FileTransport"]


class FileTransport(Transport):
    """Appends spans to ``path`` as JSON lines.

    The file is opened with ``O_APPEND`` and each batch is one ``os.write``, so threads and
    processes can share one file without interleaving lines. By default the tracer's pipeline
    worker writes spans in batches, so a slow disk never stalls the caller; ``tracer.flush()``
    waits for them, and they are flushed at exit. With ``sync=True`` each trace is written on
    the caller's thread before ``trace.end()`` returns.

    Before each batch the path is checked (one ``stat``): when the file was rotated (renamed) or
    deleted, a new one is created at the path, folders included, and the old one keeps what it
    had; when that fails, the batch is dropped and counted as ``open_error``.

    Example::

        tracer = tokentrace.Tracer(transport=tokentrace.FileTransport("./traces.jsonl"))

    Args:
        path: the JSONL file; parent folders are created.
        fsync: call ``fsync`` after each write, so written spans survive a power loss.
        sync: write on the caller's thread when the trace ends.

    Raises:
        ValueError: the file or its folder cannot be created or opened for writing.
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = False, sync: bool = False) -> None:
        super().__init__()
        self.synchronous = sync
        self.path = Path(path)
        self._fsync = fsync
        self._lock = _fork.lock()  # a reopen must not close the file under another thread's write
        self._closed = False
        try:
            self._open()
        except OSError as exc:
            raise ValueError(f"FileTransport cannot open {str(self.path)!r} for appending: {exc.strerror}") from None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        opened = os.fstat(self._fd)
        self._identity = (opened.st_ino, opened.st_dev)

    def _follow_path(self) -> str | None:
        """Reopen the file if ``path`` no longer names it (rotated, deleted): why it cannot be, or None."""
        try:
            now = os.stat(self.path)
            if (now.st_ino, now.st_dev) == self._identity:
                return None
        except OSError:
            pass  # gone, or its folder is: create them again
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd, self._identity = -1, (-1, -1)
        try:
            self._open()
        except OSError as exc:
            self._fd = -1
            return f"cannot reopen {str(self.path)!r}: {exc.strerror}"
        return None

    def emit(self, spans: list[Span]) -> None:
        try:
            data = encode_lines(spans)  # outside the lock: threads writing with sync=True encode at once
        except Exception as exc:
            self.counters.drop("write_error", len(spans), repr(exc))
            return
        with self._lock:
            failure = None if self._closed else self._follow_path()
            if failure is not None:
                self.counters.drop("open_error", len(spans), failure)
                return
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(self._fd, view) :]
                if self._fsync:
                    os.fsync(self._fd)
                self.counters.written += len(spans)
            except Exception as exc:  # disk full, closed file: counted and logged, never raised
                self.counters.drop("write_error", len(spans), repr(exc))

    def shutdown(self, timeout: float | None = None) -> bool:
        with self._lock:
            self._closed = True
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
        return True
