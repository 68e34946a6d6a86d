"""Transports: where spans go when a trace ends (stdout, a JSONL file, a collector, OTLP)."""

from .base import BatchingTransport, Transport
from .file import FileTransport
from .http import HTTPTransport
from .stdout import StdoutTransport

__all__ = ["BatchingTransport", "FileTransport", "HTTPTransport", "StdoutTransport", "Transport"]
