"""A durable span store on SQLite (stdlib ``sqlite3``), for the collector.

One writer thread (``tokentrace.store``) owns the write connection. :meth:`SQLiteStore.add`
queues its spans and waits; the writer commits everything queued in one transaction (a group
commit), so many concurrent ingest requests share one ``fsync``. The database runs in WAL mode
with ``synchronous=FULL``: a batch acknowledged by ``add`` survives a process crash *and* a power
loss (``NORMAL`` would be faster but may roll back the last commits on power loss, breaking the
"202 only after durably stored" promise of ``POST /v1/spans``). Costs are kept as exact decimal
text. Span and trace ids that are canonical UUID strings (the tracer's) are kept as their 16
bytes, other ids as text, so the two random-order indexes stay small. The schema is versioned;
:data:`MIGRATIONS` upgrades older files on open. Retention runs on the writer thread, in small
transactions, so ingest is never stalled for long.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from .. import _fork
from ..spans import _STATUSES, Span, Status, blank_span, now_ms
from .base import StoreBusyError, StoreError, TraceSummary, summarize

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SQLiteStore"]

_log = logging.getLogger(__name__)

_DEFAULT_MAX_PENDING = 200_000  # spans queued for the writer before add() answers "busy"
_DEFAULT_PRUNE_INTERVAL_S = 60.0
_PRUNE_CHUNK = 10_000
_WAIT_S = 60.0  # how long add() waits for its commit before giving up
_WAL_CHECKPOINT_PAGES = 10_000
_TRACE_SCAN_LIMIT = 200_000  # rows of the time index read at most to find recent traces

_COLUMNS = (
    "span_id, trace_id, parent_span_id, name, model, provider, prompt_tokens, comp_tokens, cost_usd, "
    "latency_ms, status, error, started_at, ended_at, cached_tokens, reasoning_tokens, "
    "cache_write_tokens, ttft_ms, attributes, cost_source"
)
_ROWS_PER_STATEMENT = 256  # 5,120 values: far below SQLite's 32,766


def _insert_rows(db: sqlite3.Connection, verb: str, rows: list[tuple[Any, ...]]) -> None:
    """Insert ``rows`` with ``verb`` (``INSERT``, ``INSERT OR IGNORE``), many to a statement.

    ``executemany`` gives up the GIL and takes it back for every row; while the request threads
    parse the next batches, each taking back can wait for the interpreter's switch interval
    (5 ms), so the store's thread, ingest's bottleneck, would idle. Statements of 256, 128, ...,
    1 rows (a batch's size in binary) are few, and each is compiled once.
    """
    start = 0
    while start < len(rows):
        count = min(_ROWS_PER_STATEMENT, 1 << ((len(rows) - start).bit_length() - 1))
        db.execute(_insert_sql(verb, count), [value for row in rows[start : start + count] for value in row])
        start += count


@functools.cache
def _insert_sql(verb: str, count: int) -> str:
    return f"{verb} INTO spans ({_COLUMNS}) VALUES " + ", ".join(["(" + ", ".join("?" * 20) + ")"] * count)


def _migrate_1(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE spans (span_id TEXT PRIMARY KEY, trace_id TEXT NOT NULL, parent_span_id TEXT, "
        "name TEXT NOT NULL, model TEXT NOT NULL, provider TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, "
        "comp_tokens INTEGER NOT NULL, cost_usd TEXT, latency_ms INTEGER, status TEXT NOT NULL, error TEXT, "
        "started_at INTEGER NOT NULL, ended_at INTEGER NOT NULL)"
    )
    db.execute("CREATE INDEX spans_ended_at ON spans (ended_at)")
    db.execute("CREATE INDEX spans_trace_id ON spans (trace_id)")
    db.execute("CREATE INDEX spans_model ON spans (model, ended_at)")


def _migrate_2(db: sqlite3.Connection) -> None:
    # Optional wire keys (DESIGN §2) get their own columns rather than a JSON blob, so a
    # query can filter on them and a PostgreSQL port maps one to one.
    for column in (
        "cached_tokens INTEGER",
        "reasoning_tokens INTEGER",
        "cache_write_tokens INTEGER",
        "ttft_ms INTEGER",
        "attributes TEXT",
        "cost_source TEXT",
    ):
        db.execute(f"ALTER TABLE spans ADD COLUMN {column}")


def _migrate_3(db: sqlite3.Connection) -> None:
    # Ids become compact keys (see _id_key); the table is rebuilt because a column's type and
    # its index entries cannot be changed in place.
    db.create_function("tokentrace_id_key", 1, _id_key, deterministic=True)
    db.execute(
        "CREATE TABLE spans_v3 (span_id BLOB PRIMARY KEY, trace_id BLOB NOT NULL, parent_span_id TEXT, "
        "name TEXT NOT NULL, model TEXT NOT NULL, provider TEXT NOT NULL, prompt_tokens INTEGER NOT NULL, "
        "comp_tokens INTEGER NOT NULL, cost_usd TEXT, latency_ms INTEGER, status TEXT NOT NULL, error TEXT, "
        "started_at INTEGER NOT NULL, ended_at INTEGER NOT NULL, cached_tokens INTEGER, reasoning_tokens INTEGER, "
        "cache_write_tokens INTEGER, ttft_ms INTEGER, attributes TEXT, cost_source TEXT)"
    )
    rest = _COLUMNS.split(", ", 2)[2]
    db.execute(
        f"INSERT INTO spans_v3 ({_COLUMNS}) SELECT tokentrace_id_key(span_id), tokentrace_id_key(trace_id), "
        f"{rest} FROM spans ORDER BY rowid"
    )
    db.execute("DROP TABLE spans")
    db.execute("ALTER TABLE spans_v3 RENAME TO spans")
    db.execute("CREATE INDEX spans_ended_at ON spans (ended_at)")
    db.execute("CREATE INDEX spans_trace_id ON spans (trace_id)")
    db.execute("CREATE INDEX spans_model ON spans (model, ended_at)")


def _migrate_4(db: sqlite3.Connection) -> None:
    # Small named values the collector keeps across restarts: its Prometheus counters, and where
    # its alert rules stand.
    db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)")


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_migrate_1, _migrate_2, _migrate_3, _migrate_4]
"""Schema steps; step ``i`` takes a file from version ``i`` to ``i + 1``. Only ever append."""

SCHEMA_VERSION = len(MIGRATIONS)


class _Job:
    """Work for the writer: spans to insert, a prune cutoff (``before_ms``), or a value to keep
    (``meta``)."""

    __slots__ = ("before_ms", "deleted", "done", "error", "meta", "new", "rowids", "spans")

    def __init__(
        self, spans: Sequence[Span] = (), before_ms: int | None = None, meta: tuple[str, bytes | None] | None = None
    ) -> None:
        self.spans = spans
        self.before_ms = before_ms
        self.meta = meta
        self.done = threading.Event()
        self.new: list[Span] = []
        self.rowids = range(0)  # the new spans' rows: one run, since one writer inserts them in a row
        self.deleted = 0
        self.error: BaseException | None = None


class SQLiteStore:
    """Spans in a SQLite file, written by one background thread.

    Example::

        store = SQLiteStore("./tokentrace.db", retention_s=30 * 86400)
        new = store.add(spans)     # returns once committed to disk
        store.traces(20)
        store.close()

    Args:
        path: the database file; its directory is created if missing.
        retention_s: delete spans older than this many seconds (checked every minute);
            ``None`` keeps everything.
        synchronous: ``"FULL"`` (durable across power loss) or ``"NORMAL"``.
        max_pending: spans waiting for the writer at most; past it ``add`` raises
            :class:`StoreBusyError`.
        clock: seconds since the epoch, for retention.

    Raises:
        StoreError: the file cannot be opened or was written by a newer version.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        retention_s: float | None = None,
        synchronous: str = "FULL",
        max_pending: int = _DEFAULT_MAX_PENDING,
        prune_interval_s: float = _DEFAULT_PRUNE_INTERVAL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"SQLiteStore.synchronous must be 'FULL' or 'NORMAL', got {synchronous!r}")
        if retention_s is not None and retention_s <= 0:
            raise ValueError(f"SQLiteStore.retention_s must be positive or None, got {retention_s!r}")
        self.path = Path(path)
        self.retention_s = retention_s
        self._synchronous = synchronous
        self._max_pending = max_pending
        self._prune_interval = prune_interval_s
        self._clock = clock
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer_db = self._connect()
        _migrate(self._writer_db)
        self._reader = self._connect()
        self._read_lock = _fork.lock()
        self._jobs: collections.deque[_Job] = collections.deque()
        self._pending = 0
        self._wake = _fork.condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="tokentrace.store", daemon=True)
        self._thread.start()

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self._synchronous}")
            db.execute("PRAGMA cache_size=-16000")  # 16 MB: memory must not grow with the file
            # Checkpoint every ~40 MB of WAL, not 4 MB: index pages hit by several commits in
            # between are copied back to the database once (random-order index inserts).
            db.execute(f"PRAGMA wal_autocheckpoint={_WAL_CHECKPOINT_PAGES}")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the span database {str(self.path)!r}: {exc}") from exc
        return db

    # --- writes ---------------------------------------------------------------------------------

    def add(self, spans: Sequence[Span]) -> list[Span]:
        """Store ``spans`` durably; the ones not stored before, once their commit is on disk.

        Raises:
            StoreBusyError: the writer is too far behind; retry later.
            StoreError: the commit failed or the store is closed.
        """
        return self.add_numbered(spans)[0]

    def add_numbered(self, spans: Sequence[Span]) -> tuple[list[Span], range]:
        """Like :meth:`add`, and the row ids the new spans were stored under (consecutive).

        Row ids grow with every insert (one is given again only if the newest row was deleted,
        a span pruned as soon as stored), so which rows a count has seen can be kept as a few
        runs of them (see :meth:`iter_rows_after`).
        """
        if not spans:
            return [], range(0)
        job = self._submit(_Job(spans))
        return job.new, job.rowids

    def prune(self, before_ms: int) -> int:
        """Delete spans that ended before ``before_ms`` (on the writer); the number deleted.

        Raises:
            StoreError: the delete failed or the store is closed.
        """
        return self._submit(_Job(before_ms=before_ms)).deleted

    def set_meta(self, key: str, value: bytes) -> None:
        """Keep ``value`` under ``key`` (on the writer), replacing what was there; durable when
        it returns.

        Raises:
            StoreError: the write failed or the store is closed.
        """
        self._submit(_Job(meta=(key, value)))

    def get_meta(self, key: str) -> bytes | None:
        """The value kept under ``key``, or None."""
        rows = self._query("SELECT value FROM meta WHERE key = ?", [key])
        return bytes(rows[0][0]) if rows else None

    def pop_meta(self, key: str) -> bytes | None:
        """The value kept under ``key``, or None; it is no longer kept (durably) when this
        returns.

        Raises:
            StoreError: the delete failed or the store is closed.
        """
        value = self.get_meta(key)
        if value is not None:
            self._submit(_Job(meta=(key, None)))
        return value

    def _submit(self, job: _Job) -> _Job:
        with self._wake:
            if self._closed:
                raise StoreError("the span store is closed")
            if self._pending and self._pending + len(job.spans) > self._max_pending:
                raise StoreBusyError(f"{self._pending} spans are waiting to be written; retry later")
            self._jobs.append(job)
            self._pending += len(job.spans)
            self._wake.notify()
        if not job.done.wait(_WAIT_S):
            raise StoreError(f"the span database did not finish within {_WAIT_S:.0f} s")
        if job.error is not None:
            raise StoreError(f"span database write failed: {job.error}") from job.error
        return job

    def _run(self) -> None:
        next_prune = time.monotonic()
        while True:
            jobs = self._take_jobs(max(next_prune - time.monotonic(), 0.0))
            self._handle(jobs)  # failures are reported to each job's caller
            if not jobs and self._closed:
                return
            if self.retention_s is not None and time.monotonic() >= next_prune:
                self._prune_expired()
                next_prune = time.monotonic() + self._prune_interval

    def _handle(self, jobs: list[_Job]) -> None:
        inserts = [job for job in jobs if job.before_ms is None and job.meta is None]
        if inserts:
            self._commit_group(inserts)
        for job in jobs:
            if job.before_ms is not None:
                self._run_prune(job)
            elif job.meta is not None:
                self._run_meta(job)

    def _take_jobs(self, timeout: float) -> list[_Job]:
        with self._wake:
            if not self._jobs and not self._closed:
                self._wake.wait(timeout if self.retention_s is not None else None)
            jobs = list(self._jobs)
            self._jobs.clear()
            self._pending = 0
        return jobs

    def _commit_group(self, jobs: list[_Job]) -> None:
        try:
            self._transaction(jobs)
        except Exception as exc:
            if len(jobs) == 1:
                self._fail(jobs[0], exc)
                return
            for job in jobs:  # one bad batch must not fail its neighbours
                try:
                    self._transaction([job])
                except Exception as single:
                    self._fail(job, single)
        for job in jobs:
            job.done.set()

    def _run_prune(self, job: _Job) -> None:
        assert job.before_ms is not None
        try:
            while (count := self._delete_chunk(self._writer_db, job.before_ms)) > 0:
                job.deleted += count
        except Exception as exc:
            self._fail(job, exc)
        job.done.set()

    def _run_meta(self, job: _Job) -> None:
        assert job.meta is not None
        key, value = job.meta
        try:
            if value is None:
                self._writer_db.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                self._writer_db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
        except Exception as exc:
            self._fail(job, exc)
        job.done.set()

    @staticmethod
    def _fail(job: _Job, exc: BaseException) -> None:
        job.error = exc
        job.new = []
        _log.error("tokentrace span database write failed (%d span(s)): %r", len(job.spans), exc)
        job.done.set()

    def _transaction(self, jobs: list[_Job]) -> None:
        db = self._writer_db
        db.execute("BEGIN IMMEDIATE")
        try:
            for job in jobs:
                job.new = self._insert(db, job.spans)
                last = db.execute("SELECT last_insert_rowid()").fetchone()[0] + 1
                job.rowids = range(last - len(job.new), last) if job.new else range(0)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            for job in jobs:
                job.new, job.rowids = [], range(0)
            raise

    def _insert(self, db: sqlite3.Connection, spans: Sequence[Span]) -> list[Span]:
        """Insert the spans not stored yet; the ones that were new.

        Resends are rare, so a batch is first inserted as if all new; only when a span id is
        already there is the batch rolled back and filtered against the table.
        """
        fresh: dict[str, Span] = {}
        for span in spans:
            fresh.setdefault(span.span_id or "", span)
        rows = [_to_row(s) for s in fresh.values()]
        db.execute("SAVEPOINT batch")
        try:
            _insert_rows(db, "INSERT", rows)
        except sqlite3.IntegrityError:
            db.execute("ROLLBACK TO batch")
            self._drop_stored(db, fresh)
            rows = [_to_row(s) for s in fresh.values()]
            _insert_rows(db, "INSERT OR IGNORE", rows)
        db.execute("RELEASE batch")
        return list(fresh.values())

    @staticmethod
    def _drop_stored(db: sqlite3.Connection, fresh: dict[str, Span]) -> None:
        ids = list(fresh)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            keys = [_id_key(k) for k in chunk]
            for (old,) in db.execute(f"SELECT span_id FROM spans WHERE span_id IN ({marks})", keys):
                del fresh[_id_text(old)]

    def _prune_expired(self) -> None:
        assert self.retention_s is not None
        cutoff = int((self._clock() - self.retention_s) * 1000)
        try:
            while self._delete_chunk(self._writer_db, cutoff) == _PRUNE_CHUNK:
                if self._jobs:  # let waiting ingest commit between chunks
                    self._handle(self._take_jobs(0.0))
        except Exception as exc:  # the writer must outlive a failed prune
            _log.error("tokentrace retention pruning failed: %r", exc)

    @staticmethod
    def _delete_chunk(db: sqlite3.Connection, before_ms: int) -> int:
        cursor = db.execute(
            "DELETE FROM spans WHERE rowid IN (SELECT rowid FROM spans WHERE ended_at < ? LIMIT ?)",
            (before_ms, _PRUNE_CHUNK),
        )
        return cursor.rowcount

    # --- reads ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """The read connection, to this thread alone until the block ends."""
        with self._read_lock:
            if self._closed:
                raise StoreError("the span store is closed")
            try:
                yield self._reader
            except sqlite3.Error as exc:
                raise StoreError(f"could not read spans: {exc}") from exc

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self._reading() as db:
            return db.execute(sql, args).fetchall()

    def recent(self, limit: int, *, model: str | None = None) -> list[Span]:
        where, args = ("WHERE model = ?", [model]) if model else ("", [])
        sql = f"SELECT {_COLUMNS} FROM spans {where} ORDER BY ended_at DESC, rowid DESC LIMIT ?"
        return [_from_row(r) for r in self._query(sql, [*args, limit])]

    def trace(self, trace_id: str) -> list[Span]:
        rows = self._query(
            f"SELECT {_COLUMNS} FROM spans WHERE trace_id = ? ORDER BY started_at, ended_at", (_id_key(trace_id),)
        )
        return [_from_row(r) for r in rows]

    def traces(self, limit: int, *, model: str | None = None) -> list[TraceSummary]:
        ids = self._recent_trace_ids(limit, model)
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = self._query(f"SELECT {_SUMMARY_COLUMNS} FROM spans WHERE trace_id IN ({marks})", ids)
        grouped: dict[str | bytes, list[Span]] = {tid: [] for tid in ids}
        for row in rows:
            grouped[row[0]].append(_summary_from_row(row))
        return [summarize(_id_text(tid), spans) for tid, spans in grouped.items()]

    def _recent_trace_ids(self, limit: int, model: str | None) -> list[str | bytes]:
        """Distinct trace ids, most recent first, from a walk down the time index.

        A long trace (an agent's loop) is many rows in a row, so the walk cannot be sized from
        ``limit``: SQLite steps the query a row at a time, and the walk stops at the
        ``limit``-th trace, or after :data:`_TRACE_SCAN_LIMIT` rows. Every row read belongs to a
        trace found, whose spans are all read next to summarize it, so the walk costs less than
        what follows it.
        """
        where, args = ("WHERE model = ?", [model]) if model else ("", [])
        sql = f"SELECT trace_id FROM spans {where} ORDER BY ended_at DESC LIMIT ?"
        ids: dict[str | bytes, None] = {}
        with self._reading() as db:
            rows = db.execute(sql, [*args, _TRACE_SCAN_LIMIT])
            try:
                for (tid,) in rows:
                    ids.setdefault(tid, None)
                    if len(ids) >= limit:
                        break
            finally:
                rows.close()
        return list(ids)

    def iter_since(self, since_ms: int, batch_size: int = 5000, *, metrics_only: bool = False) -> Iterator[list[Span]]:
        columns, make = (_METRIC_COLUMNS, _metrics_from_row) if metrics_only else (_COLUMNS, _from_row)
        db = self._connect()  # its own snapshot, so a long rebuild does not hold the reader
        try:
            cursor = db.execute(f"SELECT {columns} FROM spans WHERE ended_at >= ? ORDER BY ended_at", (since_ms,))
            while rows := cursor.fetchmany(batch_size):
                yield [make(r) for r in rows]
        finally:
            db.close()

    def iter_rows_after(self, rowid: int, skip: Sequence[range] = (), batch_size: int = 5000) -> Iterator[list[Span]]:
        """Spans stored under row ids above ``rowid`` and in none of the ``skip`` runs, in
        batches, with only the fields metrics read (what a count missed: see :meth:`add_numbered`)."""
        db = self._connect()
        try:
            cursor = db.execute(f"SELECT rowid, {_METRIC_COLUMNS} FROM spans WHERE rowid > ? ORDER BY rowid", (rowid,))
            while rows := cursor.fetchmany(batch_size):
                yield [_metrics_from_row(r[1:]) for r in rows if not any(r[0] in run for run in skip)]
        finally:
            db.close()

    def last_rowid(self) -> int:
        """The highest row id stored (0 when empty)."""
        return int(self._query("SELECT COALESCE(MAX(rowid), 0) FROM spans")[0][0])

    def count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM spans")[0][0])

    def close(self) -> None:
        """Commit what is queued, stop the writer and close the database."""
        with self._wake:
            if self._closed:
                return
            self._closed = True
            self._wake.notify()
        self._thread.join(_WAIT_S)
        with self._read_lock:
            self._reader.close()
        self._writer_db.close()


def _migrate(db: sqlite3.Connection) -> None:
    """Bring the file's schema to :data:`SCHEMA_VERSION`, one step per transaction."""
    db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = db.execute("SELECT version FROM schema_version").fetchone()
    version = 0 if row is None else int(row[0])
    if version > len(MIGRATIONS):
        raise StoreError(
            f"the span database has schema version {version}, newer than this tokentrace "
            f"understands ({len(MIGRATIONS)}); upgrade tokentrace"
        )
    for step in range(version, len(MIGRATIONS)):
        db.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[step](db)
            db.execute("DELETE FROM schema_version")
            db.execute("INSERT INTO schema_version (version) VALUES (?)", (step + 1,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        _log.info("tokentrace span database migrated to schema version %d", step + 1)


_attr_encoder = msgspec.json.Encoder(decimal_format="number", enc_hook=str)


def _id_key(text: str) -> str | bytes:
    """An id as stored: a canonical (lowercase) UUID string as its 16 bytes, anything else as is.

    Only strings that :func:`_id_text` turns back into exactly the same text become bytes, so
    the mapping is lossless and a text id never equals a UUID's bytes.
    """
    if len(text) == 36 and text[8] == text[13] == text[18] == text[23] == "-":
        digits = text.replace("-", "")
        if len(digits) == 32:
            try:
                raw = bytes.fromhex(digits)
            except ValueError:
                return text
            if raw.hex() == digits:
                return raw
    return text


def _id_text(key: str | bytes) -> str:
    if isinstance(key, str):
        return key
    h = key.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _to_row(s: Span) -> tuple[Any, ...]:
    ended = now_ms() if s.ended_at is None else s.ended_at  # 0 is a time: 1970-01-01T00:00:00.000Z
    return (
        _id_key(s.span_id or ""),
        _id_key(s.trace_id or ""),
        s.parent_span_id,
        s.name or "",
        s.model,
        s.provider,
        s.prompt_tokens,
        s.comp_tokens,
        None if s.cost is None else str(s.cost),
        s.latency_ms,
        s.status.value,
        s.error,
        ended if s.started_at is None else s.started_at,
        ended,
        s.cached_tokens,
        s.reasoning_tokens,
        s.cache_write_tokens,
        s.ttft_ms,
        None if s.attributes is None else _attr_encoder.encode(s.attributes).decode(),
        s.cost_source,
    )


# What the windows and the Prometheus counters read of a span (see SpanStore.iter_since)
_METRIC_COLUMNS = (
    "name, model, provider, prompt_tokens, comp_tokens, cost_usd, latency_ms, status, ended_at, "
    "cached_tokens, reasoning_tokens, cache_write_tokens"
)


def _metrics_from_row(r: tuple[Any, ...]) -> Span:
    """A span of :data:`_METRIC_COLUMNS`, the rest unset; the stored values passed the checks of
    ``Span(...)`` when they were written."""
    span = blank_span()
    span.name, span.model, span.provider, span.prompt_tokens, span.comp_tokens = r[0], r[1], r[2], r[3], r[4]
    span.cost = None if r[5] is None else Decimal(r[5])
    span.latency_ms, span.status, span.ended_at = r[6], _STATUSES[r[7]], r[8]
    span.cached_tokens, span.reasoning_tokens, span.cache_write_tokens = r[9], r[10], r[11]
    return span


# A trace's id, and what summarize() reads of its spans (see SQLiteStore.traces)
_SUMMARY_COLUMNS = "trace_id, name, model, prompt_tokens, comp_tokens, cost_usd, status, started_at, ended_at"


def _summary_from_row(r: tuple[Any, ...]) -> Span:
    """A span of :data:`_SUMMARY_COLUMNS` but its trace id, the rest unset (as :func:`_metrics_from_row`);
    it is made in a fifth of the time a whole span takes, which counts for traces of many spans."""
    span = blank_span()
    span.name, span.model, span.prompt_tokens, span.comp_tokens = r[1], r[2], r[3], r[4]
    span.cost = None if r[5] is None else Decimal(r[5])
    span.status, span.started_at, span.ended_at = _STATUSES[r[6]], r[7], r[8]
    return span


def _from_row(r: tuple[Any, ...]) -> Span:
    return Span(
        span_id=_id_text(r[0]),
        trace_id=_id_text(r[1]),
        parent_span_id=r[2],
        name=r[3],
        model=r[4],
        provider=r[5],
        prompt_tokens=r[6],
        comp_tokens=r[7],
        cost=None if r[8] is None else Decimal(r[8]),
        latency_ms=r[9],
        status=Status(r[10]),
        error=r[11],
        started_at=r[12],
        ended_at=r[13],
        cached_tokens=r[14],
        reasoning_tokens=r[15],
        cache_write_tokens=r[16],
        ttft_ms=r[17],
        attributes=None if r[18] is None else msgspec.json.decode(r[18]),
        cost_source=r[19],
    )
