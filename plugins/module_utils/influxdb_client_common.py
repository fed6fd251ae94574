# Copyright: Isobar contributors
# Apache-2.0
"""Shared code of the influxdb_* and weather_inject modules: connection options, one API client
(influxdb-client's REST layer, TLS verified against our CA), error handling that says what is wrong
and that nothing was changed, and small helpers (durations, org/bucket lookup)."""

from __future__ import annotations

import base64
import json
import re
import traceback

try:
    from ansible.module_utils.basic import env_fallback, missing_required_lib
except ImportError:  # the live producer service (pipeline_live) runs this code in the client venv, without Ansible
    env_fallback = None

    def missing_required_lib(library):
        return f"Failed to import the required Python library ({library})"

INFLUXDB_CLIENT_IMPORT_ERROR = None
try:
    from influxdb_client import InfluxDBClient
    from influxdb_client.rest import ApiException
except ImportError:  # reported by InfluxDBApi.__init__ through missing_required_lib
    InfluxDBClient = None

    class ApiException(Exception):
        """Stand-in so the except clauses stay valid; never raised (no client, no call)."""

    INFLUXDB_CLIENT_IMPORT_ERROR = traceback.format_exc()

NOTHING_CHANGED = "Nothing was changed."


def influxdb_argument_spec(org_required=True, token_required=False):
    """Connection options every module shares, a new dict each call.

    Documented by the influxdb_connection doc fragment (plugins/doc_fragments/influxdb_connection.py),
    which says org is required and token is not; a module that passes other values says so in its
    own DOCUMENTATION."""
    return dict(
        url=dict(type="str", required=True, fallback=(env_fallback, ["INFLUX_HOST"])),
        token=dict(type="str", required=token_required, no_log=True, fallback=(env_fallback, ["INFLUX_TOKEN"])),
        org=dict(type="str", required=org_required, fallback=(env_fallback, ["INFLUX_ORG"])),
        ca_path=dict(type="path"),
        validate_certs=dict(type="bool", default=True),
        timeout=dict(type="int", default=30),
    )


class InfluxDBError(Exception):
    """An API call failed; status 0 means no HTTP answer (TLS, connection)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


_DURATION_UNITS = {"ns": 1, "us": 10**3, "µs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9,
                   "h": 3600 * 10**9, "d": 86400 * 10**9, "w": 7 * 86400 * 10**9}
_DURATION_RE = re.compile(r"(\d+)(ns|us|µs|ms|s|m|h|d|w)")


def parse_duration(text, what="duration"):
    """Flux/InfluxDB duration ("90s", "1h30m", "30d") to nanoseconds; "0"/"inf" is 0. Raises ValueError."""
    text = str(text).strip()
    if text in ("0", "inf", "infinite"):
        return 0
    if text.isdigit():
        raise ValueError(f"{what} {text!r} needs a unit (e.g. {text}s, {text}h, {text}d)")
    pos, total = 0, 0
    for match in _DURATION_RE.finditer(text):
        if match.start() != pos:
            break
        total += int(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"{what} {text!r} is not a duration like 10s, 5m, 1h30m, 30d")
    return total


def format_duration(nanoseconds):
    """Nanoseconds to the shortest Flux duration literal (1h30m, 10s, 250ms)."""
    if nanoseconds == 0:
        return "0s"
    parts = []
    for unit in ("w", "d", "h", "m", "s", "ms", "us", "ns"):
        size = _DURATION_UNITS[unit]
        if nanoseconds >= size:
            parts.append(f"{nanoseconds // size}{unit}")
            nanoseconds %= size
    return "".join(parts)


class InfluxDBApi:
    """The InfluxDB v2 HTTP API through influxdb-client's REST client (its TLS, timeouts and pools)."""

    def __init__(self, module, token=None):
        if InfluxDBClient is None:
            module.fail_json(msg=missing_required_lib("influxdb-client"), exception=INFLUXDB_CLIENT_IMPORT_ERROR)
        params = module.params
        self.module = module
        self.url = params["url"].rstrip("/")
        if not self.url.startswith(("https://", "http://")):
            module.fail_json(msg=f"url {self.url!r} must start with https:// (or http://). {NOTHING_CHANGED}")
        self.token = token if token is not None else params.get("token")
        self.client = InfluxDBClient(
            url=self.url, token=self.token or "", org=params.get("org"), timeout=params["timeout"] * 1000,
            ssl_ca_cert=params.get("ca_path"), verify_ssl=params["validate_certs"],
        )
        self._org = None

    def close(self):
        self.client.close()

    def request(self, method, path, query=None, body=None, token=None, auth=True, headers=None, raw=False):
        """One API call. Returns the parsed JSON body (or None, or the raw response with raw=True).

        token overrides the module's token for this call; auth=False sends no Authorization header.
        Raises InfluxDBError with the server's message.
        """
        send = {"Accept": "application/json", "Content-Type": "application/json"}
        use_token = token if token is not None else self.token
        if auth and use_token:
            send["Authorization"] = f"Token {use_token}"
        send.update(headers or {})
        query_params = [(k, v) for k, v in (query or {}).items() if v is not None]
        try:
            resp = self.client.api_client.rest_client.request(
                method, self.url + path, query_params=query_params or None, headers=send, body=body)
        except ApiException as exc:
            raise InfluxDBError(exc.status or 0, _api_message(exc)) from None
        except Exception as exc:  # connection refused, TLS verification, timeouts
            raise InfluxDBError(0, f"cannot reach InfluxDB at {self.url}: {_short(exc)}") from None
        if raw:
            return resp
        return json.loads(resp.data) if resp.data else None

    def stream(self, method, path, query=None, body=None, headers=None, token=None):
        """One API call whose request body (a file object) and answer are streamed, for payloads too large for
        memory (backup and restore). Uses the client's own connection pool (same TLS settings as request()).

        Returns the urllib3 response unread (read it with .stream()/.read(), then .release_conn()); the answer is
        not decompressed (decode_content=False). Raises InfluxDBError with the server's message on an HTTP error.
        """
        import urllib3  # a dependency of influxdb-client

        send = {}
        use_token = token if token is not None else self.token
        if use_token:
            send["Authorization"] = f"Token {use_token}"
        send.update(headers or {})
        url = self.url + path
        if query:
            from urllib.parse import urlencode
            url += "?" + urlencode([(k, v) for k, v in query.items() if v is not None])
        timeout = urllib3.Timeout(connect=self.module.params["timeout"], read=self.module.params["timeout"])
        try:
            resp = self.client.api_client.rest_client.pool_manager.request(
                method, url, body=body, headers=send, preload_content=False, decode_content=False,
                timeout=timeout, retries=False)
        except Exception as exc:  # connection refused, TLS verification, timeouts
            raise InfluxDBError(0, f"cannot reach InfluxDB at {self.url}: {_short(exc)}") from None
        if resp.status >= 400:
            data = resp.read(decode_content=True)
            resp.release_conn()
            message = f"HTTP {resp.status}"
            try:
                parsed = json.loads(data)
                message = parsed.get("message") or parsed.get("error") or str(parsed)
            except (ValueError, AttributeError):
                if data:
                    message = data[:300].decode("utf-8", "replace")
            raise InfluxDBError(resp.status, message)
        return resp

    # -- lookups --------------------------------------------------------------------------------
    def org(self, name=None):
        """The organization by name (the module's org by default); fails the module when unknown."""
        name = name or self.module.params["org"]
        if self._org and self._org["name"] == name:
            return self._org
        try:
            body = self.request("GET", "/api/v2/orgs", {"org": name})
        except InfluxDBError as exc:
            if exc.status == 404:
                body = {"orgs": []}
            else:
                self.fail("cannot look up the organization", exc)
        orgs = [o for o in body.get("orgs", []) if o.get("name") == name]
        if not orgs:
            self.module.fail_json(msg=f"unknown organization {name!r} (or the token may not read it). {NOTHING_CHANGED}")
        self._org = orgs[0]
        return self._org

    def bucket(self, name, org_id=None, required=True):
        """A bucket by name in the org; fails the module when required and unknown."""
        org_id = org_id or self.org()["id"]
        try:
            body = self.request("GET", "/api/v2/buckets", {"orgID": org_id, "name": name})
        except InfluxDBError as exc:
            if exc.status == 404:
                body = {"buckets": []}
            else:
                self.fail(f"cannot look up bucket {name!r}", exc)
        found = [b for b in body.get("buckets", []) if b.get("name") == name]
        if not found:
            if required:
                self.module.fail_json(msg=f"unknown bucket {name!r} in organization {self.module.params['org']!r}. "
                                          f"{NOTHING_CHANGED}")
            return None
        return found[0]

    def list_all(self, path, key, query):
        """Every item of a paginated list endpoint (offset/limit)."""
        items, offset = [], 0
        while True:
            page = self.request("GET", path, dict(query, offset=offset, limit=100)) or {}
            batch = page.get(key) or []
            items.extend(batch)
            if len(batch) < 100:
                return items
            offset += len(batch)

    def token_known(self, value):
        """Whether the server knows this token value (active or inactive): an unknown value gets 401.
        Raises InfluxDBError for any other failure."""
        try:
            self.request("GET", "/api/v2/buckets", {"limit": 1}, token=value)
            return True
        except InfluxDBError as exc:
            if exc.status == 401:
                return False
            raise

    def exit_absent(self, current, before, path, what, result_key):
        """state=absent of one named object: delete ``current`` (found before, or None) at ``path``/<its id>
        unless in check mode, and exit with changed, ``result_key``: {} and the diff from ``before``."""
        result = {"changed": bool(current), result_key: {}}
        if self.module._diff:
            result["diff"] = dict(before=before, after={})
        if current and not self.module.check_mode:
            try:
                self.request("DELETE", f"{path}/{current['id']}")
            except InfluxDBError as exc:
                self.fail(f"cannot delete {what}", exc)
        self.module.exit_json(**result)

    def validate_flux(self, text, org_id):
        """Compile and run a query once (v.* defined over the last minute) so bad Flux or an unknown
        bucket is reported before anything is created. Fails the module with the server's message."""
        try:
            result = self.request("POST", "/api/v2/query/analyze", body={"query": text, "type": "flux"})
        except InfluxDBError as exc:
            self.fail("cannot analyze the Flux query", exc)
        errors = (result or {}).get("errors") or []
        if errors:
            detail = "; ".join(f"line {e.get('line')} col {e.get('column')}: {e.get('message')}" for e in errors)
            self.module.fail_json(msg=f"invalid Flux query: {detail}. {NOTHING_CHANGED}")
        lines = text.splitlines()
        head = 0
        while head < len(lines) and (not lines[head].strip() or lines[head].lstrip().startswith("import ")):
            head += 1
        probe = "\n".join(lines[:head] + ["v = {timeRangeStart: -1m, timeRangeStop: now(), windowPeriod: 10s}"]
                          + lines[head:])
        try:
            self.request("POST", "/api/v2/query", {"orgID": org_id},
                         body={"query": probe, "type": "flux", "dialect": {"annotations": []}},
                         headers={"Accept": "application/csv"}, raw=True)
        except InfluxDBError as exc:
            self.module.fail_json(msg=f"the Flux query does not run: {exc.message}. {NOTHING_CHANGED}",
                                  status=exc.status)

    def fail(self, what, exc, **extra):
        """Fail the module for an API error with a message that says why."""
        hint = ""
        if exc.status == 401:
            hint = " (the token is not accepted: wrong, deleted or inactive)"
        elif exc.status == 403:
            hint = " (the token lacks the permission)"
        self.module.fail_json(msg=f"{what}: {exc.message}{hint}. {NOTHING_CHANGED}", status=exc.status, **extra)


def _short(exc):
    text = str(exc)
    match = re.search(r"(certificate verify failed[^'\")]*|Connection refused|timed out|Name or service not known)", text)
    return match.group(1) if match else text[:300]


def _api_message(exc):
    body = getattr(exc, "body", None)
    if body:
        try:
            data = json.loads(body)
            return data.get("message") or data.get("error") or str(data)
        except (ValueError, AttributeError):
            return str(body)[:300]
    return f"HTTP {exc.status} {exc.reason}".strip() if exc.status else _short(exc.reason or exc)


def basic_auth_header(username, password):
    raw = f"{username}:{password}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def dict_diff_keys(before, after):
    """Keys whose values differ between two dicts (for 'changes' in module results)."""
    return sorted(k for k in set(before or {}) | set(after or {}) if (before or {}).get(k) != (after or {}).get(k))
