"""The OpenAPI 3.1 document served at ``/openapi.json``, kept next to what the handlers do."""

from __future__ import annotations

from functools import cache
from typing import Any

from .._version import __version__
from .ingest import MAX_BODY_BYTES

__all__ = ["openapi_document"]

_INT = {"type": "integer", "minimum": 0, "maximum": 2**53 - 1}
_NINT = {"type": ["integer", "null"], "minimum": 0, "maximum": 2**53 - 1}
_STR = {"type": "string"}
_MS = {"type": ["number", "null"], "description": "milliseconds; null when no span has a latency"}
_MONEY = {"type": "number", "description": "USD, exact decimal"}
_FILTERS = {"type": "object", "additionalProperties": {"type": "string"}, "description": "filters applied"}
_TIME = {"type": "string", "format": "date-time"}
_MISDIRECTED = "the Host header names a host the server does not answer to (see allowed_hosts)"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": required, "properties": properties}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


def _param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


_WINDOW = _param("window", "a duration from 1s to 30d such as 15m, 1h, 1h30m, 7d (default 1h)", _STR)
_LABELS = [
    _param(k, f"only spans with this {k}", {"type": "string", "maxLength": 1024}) for k in ("model", "provider", "name")
]
_LIMIT = _param(
    "limit", "how many to return, 1 to 1000 (default 50)", {"type": "integer", "minimum": 1, "maximum": 1000}
)


def _get(summary: str, schema: dict[str, Any], params: list[dict[str, Any]], *extra: int) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": _json(schema, summary),
        "401": _error("missing or wrong bearer token"),
        "421": _error(_MISDIRECTED),
    }
    if params:
        responses["400"] = _error("a query parameter is not acceptable; the message names it")
    for status in extra:
        responses[str(status)] = _error({404: "not found", 503: "the span store is unavailable"}[status])
    return {"summary": summary, "parameters": params, "responses": responses}


def _all(**properties: Any) -> dict[str, Any]:
    """An object whose properties are all required, in this order."""
    return _object(list(properties), properties)


_COST = {"type": ["number", "null"], "description": "USD, exact decimal; null when none of the spans had a price"}
_COSTS = {"type": "object", "additionalProperties": _COST}
_RATE = {"type": ["number", "null"], "minimum": 0, "maximum": 1}
_COLUMNS = {
    "type": "object",
    "description": "one value per timestamp for each metric",
    "additionalProperties": {"type": "array", "items": {"type": ["number", "null"]}},
}


def _schemas() -> dict[str, Any]:
    return {
        "Error": _object(["error"], {"error": _STR, "span_index": {"type": "integer"}, "field": _STR}),
        "Cost": _all(total_usd=_MONEY, by_model=_COSTS, window=_STR, span_count=_INT, by_provider=_COSTS,
                     error_count=_INT, unpriced_count={**_INT, "description": "spans whose model has no known price"},
                     filters=_FILTERS),
        "Latency": _all(p50_ms=_MS, p95_ms=_MS, p99_ms=_MS, window=_STR, avg_ms=_MS, span_count=_INT, filters=_FILTERS),
        "Tokens": _all(prompt_tokens=_INT, comp_tokens=_INT, total_tokens=_INT, window=_STR, span_count=_INT,
                       filters=_FILTERS),
        "Errors": _all(error_count=_INT, error_rate=_RATE, window=_STR, span_count=_INT, filters=_FILTERS),
        "Columns": _COLUMNS,
        "Timeseries": _all(window=_STR, step=_STR, timestamps={"type": "array", "items": _TIME},
                           total=_ref("Columns"), models={"type": "object", "additionalProperties": _ref("Columns")}),
        "WireSpan": _wire_span(),
        "TraceSummary": _all(trace_id=_STR, name=_STR, started_at=_TIME, ended_at=_TIME,
                             duration_ms={"type": "integer"}, span_count=_INT, error_count=_INT, prompt_tokens=_INT,
                             comp_tokens=_INT, total_tokens=_INT, cost_usd={"type": ["number", "null"]},
                             models={"type": "array", "items": _STR}),
    }  # fmt: skip


_TEXT = {"type": "string", "maxLength": 1024}
_ID = {"type": "string", "minLength": 1, "maxLength": 128}
_WIRE_REQUIRED: dict[str, Any] = {
    "trace_id": _ID,
    "span_id": _ID,
    "name": _TEXT,
    "model": _TEXT,
    "provider": _TEXT,
    "prompt_tokens": _INT,
    "comp_tokens": _INT,
    "total_tokens": {**_INT, "description": "prompt_tokens + comp_tokens"},
    "cost_usd": {"type": ["number", "string", "null"], "description": "USD, 0 to 1,000,000; null when unknown"},
    "latency_ms": _NINT,
    "status": {"type": "string", "enum": ["ok", "error"]},
    "started_at": {**_TIME, "description": "UTC with milliseconds, e.g. 2026-03-15T14:23:01.441Z"},
    "ended_at": {**_TIME, "description": "not earlier than started_at"},
}
_WIRE_OPTIONAL: dict[str, Any] = {
    "parent_span_id": {"type": ["string", "null"], "maxLength": 128},
    "error": {"type": ["string", "null"], "maxLength": 65536},
    "cached_tokens": _NINT,
    "reasoning_tokens": _NINT,
    "cache_write_tokens": _NINT,
    "ttft_ms": _NINT,
    "attributes": {"type": ["object", "null"], "description": "nested at most 32 levels"},
    "cost_source": {"type": ["string", "null"], "maxLength": 1024},
}


def _wire_span() -> dict[str, Any]:
    schema = _object(list(_WIRE_REQUIRED), {**_WIRE_REQUIRED, **_WIRE_OPTIONAL})
    schema["description"] = "a span in the wire format; unknown keys are ignored"
    return schema


def _ingest() -> dict[str, Any]:
    body = _object(["spans"], {"spans": {"type": "array", "items": _ref("WireSpan")}})
    accepted = _object(["accepted", "duplicates"], {"accepted": _INT, "duplicates": _INT})
    return {
        "summary": "Store spans (what HTTPTransport sends); answered once they are durably stored",
        "description": f"Idempotent on span_id. Body at most {MAX_BODY_BYTES} bytes after decompression; "
        "Content-Encoding gzip accepted. Nothing of a batch with a bad span is stored.",
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": {
            "202": _json(accepted, "stored; duplicates were already stored"),
            "400": _error("the body or a span is not acceptable; span_index and field say which"),
            "401": _error("missing or wrong bearer token"),
            "413": _error(f"the body is larger than {MAX_BODY_BYTES} bytes"),
            "415": _error("a Content-Type other than application/json, or a Content-Encoding but gzip or identity"),
            "421": _error(_MISDIRECTED),
            "503": _error("the store is busy or unavailable; retry after Retry-After seconds"),
        },
    }


def _paths() -> dict[str, Any]:
    metric = [_WINDOW, *_LABELS]
    html = {
        "200": {"description": "the dashboard page", "content": {"text/html": {"schema": _STR}}},
        "421": _error(_MISDIRECTED),
    }
    health = _json(_object(["status"], {"status": {"type": "string", "enum": ["ok"]}}), "the server is up")
    series = [_WINDOW, _param("step", "a duration such as 5m (default 5m)", _STR), *_LABELS]
    return {
        "/health": {"get": {"summary": "Liveness", "security": [], "responses": {"200": health}}},
        "/": {"get": {"summary": "Dashboard", "security": [], "responses": html}},
        "/dashboard": {"get": {"summary": "Dashboard", "security": [], "responses": html}},
        "/openapi.json": {"get": _get("This document", {"type": "object"}, [])},
        "/metrics": {"get": _prometheus()},
        "/metrics/cost": {"get": _get("Cost over a window", _ref("Cost"), metric)},
        "/metrics/latency": {"get": _get("Latency percentiles over a window", _ref("Latency"), metric)},
        "/metrics/tokens": {"get": _get("Tokens over a window", _ref("Tokens"), metric)},
        "/metrics/errors": {"get": _get("Errors over a window", _ref("Errors"), metric)},
        "/metrics/timeseries": {"get": _get("Metrics per step, overall and per model", _ref("Timeseries"), series)},
        "/traces": {"get": _get("Recent traces", _list("traces", _ref("TraceSummary")), [_LIMIT, _LABELS[0]], 503)},
        "/traces/recent": {
            "get": _get("Recent spans, newest first", _list("spans", _ref("WireSpan")), [_LIMIT, _LABELS[0]], 503)
        },
        "/traces/{trace_id}": {"get": _trace()},
        "/alerts": {"get": _get("Alert rules and their states", _list("alerts", {"type": "object"}), [])},
        "/v1/spans": {"post": _ingest()},
    }


def _list(key: str, items: dict[str, Any]) -> dict[str, Any]:
    return _object([key], {key: {"type": "array", "items": items}})


def _trace() -> dict[str, Any]:
    detail = {"allOf": [_ref("TraceSummary"), _list("spans", _ref("WireSpan"))]}
    op = _get("One trace with its spans", detail, [], 404, 503)
    op["parameters"] = [{"name": "trace_id", "in": "path", "required": True, "schema": _STR}]
    return op


def _prometheus() -> dict[str, Any]:
    text = {"description": "Prometheus text format", "content": {"text/plain": {"schema": _STR}}}
    return {
        "summary": "Prometheus metrics",
        "responses": {"200": text, "401": _error("missing or wrong token"), "421": _error(_MISDIRECTED)},
    }


@cache
def openapi_document(secured: bool, hosts_checked: bool) -> dict[str, Any]:
    """The API description (OpenAPI 3.1); ``secured`` when the server requires a bearer token,
    ``hosts_checked`` when it answers only for some ``Host`` names."""
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "tokentrace", "version": __version__},
        "components": {"schemas": _schemas()},
        "paths": _paths(),
    }
    if secured:
        doc["components"]["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        doc["security"] = [{"bearer": []}]
    else:
        for item in doc["paths"].values():
            for op in item.values():
                op.pop("security", None)
                op["responses"].pop("401", None)
    if not hosts_checked:
        for item in doc["paths"].values():
            for op in item.values():
                op["responses"].pop("421", None)
    return doc
