# Copyright: Isobar contributors
# Apache-2.0
"""Shared pieces of the kafka_* modules: connection options, admin-client factory, error wording.

Modules import it by its collection name (``ansible_collections.isobar.pipeline.plugins.module_utils.kafka_client``). Nothing here talks to
Ansible except through the AnsibleModule passed in, so the pure helpers are unit-testable.
"""

from __future__ import annotations

import logging
import re
import traceback

try:
    import kafka.errors as kafka_errors
    from kafka import KafkaAdminClient

    HAS_KAFKA = True
    KAFKA_IMPORT_ERROR = None
except ImportError:  # reported by check_kafka_library() with the interpreter's path
    HAS_KAFKA = False
    KAFKA_IMPORT_ERROR = traceback.format_exc()

from ansible_collections.isobar.pipeline.plugins.module_utils.kafka_net_fix import apply as _apply_kafka_net_fix

# Without it a refused password often looks like a network failure (see kafka_net_fix).
_apply_kafka_net_fix()

# Connection options shared by every kafka_* module and influx_to_kafka, documented by the kafka_connection
# doc fragment (plugins/doc_fragments/kafka_connection.py).
KAFKA_CONNECTION_ARGS = dict(
    bootstrap_servers=dict(type="list", elements="str", required=True),
    sasl_username=dict(type="str", required=True),
    sasl_password=dict(type="str", required=True, no_log=True),
    sasl_mechanism=dict(type="str", default="SCRAM-SHA-512", choices=["SCRAM-SHA-256", "SCRAM-SHA-512"]),
    ssl_cafile=dict(type="path", required=True),
    ssl_check_hostname=dict(type="bool", default=True),
    api_version=dict(type="str", default="4.0"),
    connect_timeout=dict(type="int", default=20),
    request_timeout=dict(type="int", default=30),
)

NOTHING_CHANGED = "Nothing was changed."
_SERVER_RE = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9._-]+):([0-9]{1,5})$")
_API_VERSION_RE = re.compile(r"^([0-9]+)\.([0-9]+)(?:\.([0-9]+))?$")


class KafkaModuleError(Exception):
    """An error to report as the module's msg (already worded for the user)."""


def parse_api_version(value):
    """'4.3' -> (4, 3). Raises KafkaModuleError on anything else."""
    match = _API_VERSION_RE.match(str(value or "").strip())
    if not match:
        raise KafkaModuleError(f"api_version must look like '4.0' or '4.3.1', got {value!r}. {NOTHING_CHANGED}")
    return tuple(int(part) for part in match.groups() if part is not None)


def validate_connection_params(params):
    """Check the connection options before any network I/O; returns a list of problems."""
    problems = []
    servers = params.get("bootstrap_servers") or []
    if not servers:
        problems.append("bootstrap_servers must list at least one host:port")
    for server in servers:
        match = _SERVER_RE.match(server.strip())
        if not match or not 0 < int(match.group(2)) < 65536:
            problems.append(f"bootstrap_servers entry {server!r} is not host:port")
    if not params.get("sasl_username"):
        problems.append("sasl_username must not be empty")
    if not params.get("sasl_password"):
        problems.append("sasl_password must not be empty")
    for name in ("connect_timeout", "request_timeout"):
        if params.get(name) is not None and params[name] <= 0:
            problems.append(f"{name} must be a positive number of seconds")
    try:
        parse_api_version(params.get("api_version"))
    except KafkaModuleError as exc:
        problems.append(str(exc).replace(f" {NOTHING_CHANGED}", ""))
    return problems


def client_config(params, username=None, password=None):
    """kafka-python keyword arguments from the module's connection options."""
    return dict(
        bootstrap_servers=[s.strip() for s in params["bootstrap_servers"]],
        security_protocol="SASL_SSL",
        sasl_mechanism=params["sasl_mechanism"],
        sasl_plain_username=username if username is not None else params["sasl_username"],
        sasl_plain_password=password if password is not None else params["sasl_password"],
        ssl_cafile=params["ssl_cafile"],
        ssl_check_hostname=params["ssl_check_hostname"],
        # Explicit: version probing is unreliable on KRaft with kafka-python (pain point).
        api_version=parse_api_version(params["api_version"]),
        bootstrap_timeout_ms=params["connect_timeout"] * 1000,
        request_timeout_ms=params["request_timeout"] * 1000,
        # Fail fast on a dead address instead of backing off for 30 s per attempt.
        reconnect_backoff_max_ms=2000,
        client_id="isobar-ansible",
    )


def _exc_text(exc):
    """'Name: message' once (kafka-python's str() often already starts with the class name)."""
    name = type(exc).__name__
    text = str(exc)
    while text.startswith(f"{name}: "):
        text = text[len(name) + 2:]
    return f"{name}: {text}" if name not in text else text


def auth_failed_sentence(user, mechanism, servers, detail=""):
    """The brokers refused the SCRAM login (both client libraries word it so)."""
    return (f"authentication failed for SCRAM user {user!r} ({mechanism}) at {servers}: wrong user name or password"
            + (f" ({detail})" if detail else ""))


def tls_failed_sentence(servers, cafile, detail):
    """The brokers' certificates did not verify against the CA file."""
    return f"TLS verification of the brokers at {servers} against {cafile} failed: {detail}"


def unreachable_sentence(servers, timeout, detail=""):
    """No broker answered within the connect timeout."""
    return (f"cannot reach the Kafka cluster at {servers} within {timeout} s "
            "(down, wrong address/port, firewall, or not a SASL_SSL listener)" + (f": {detail}" if detail else ""))


def describe_exception(exc, params, username=None):
    """A user-facing sentence for a connection/auth/TLS failure."""
    user = username if username is not None else params.get("sasl_username")
    servers = ", ".join(params.get("bootstrap_servers") or [])
    name = type(exc).__name__
    text = _exc_text(exc)
    if HAS_KAFKA and isinstance(exc, kafka_errors.SaslAuthenticationFailedError):
        return auth_failed_sentence(user, params.get("sasl_mechanism"), servers)
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSLCertVerificationError" in name or "certificate verify failed" in text:
        return tls_failed_sentence(servers, params.get("ssl_cafile"), text)
    if HAS_KAFKA and isinstance(exc, (kafka_errors.KafkaTimeoutError, kafka_errors.NodeNotReadyError,
                                      kafka_errors.KafkaConnectionError)):
        return unreachable_sentence(servers, params.get("connect_timeout"), text)
    if HAS_KAFKA and isinstance(exc, kafka_errors.AuthorizationError):
        return f"SCRAM user {user!r} is not authorized for this operation: {text}"
    return text


def check_kafka_library(module):
    if not HAS_KAFKA:
        import sys

        module.fail_json(
            msg=(f"kafka-python is required on the host running this module (interpreter {sys.executable}); "
                 f"apply the client_venv role and set ansible_python_interpreter to its python. {NOTHING_CHANGED}"),
            exception=KAFKA_IMPORT_ERROR,
        )


def connect(module, username=None, password=None):
    """Validate the connection options and return a connected KafkaAdminClient, or fail the module."""
    check_kafka_library(module)
    problems = validate_connection_params(module.params)
    if problems:
        module.fail_json(msg="Invalid connection options: " + "; ".join(problems) + ". " + NOTHING_CHANGED)
    try:
        with open(module.params["ssl_cafile"], "rb"):
            pass
    except OSError as exc:
        module.fail_json(msg=f"ssl_cafile {module.params['ssl_cafile']} cannot be read: {exc}. {NOTHING_CHANGED}")
    try:
        return open_admin_client(module.params, username, password)
    except Exception as exc:  # any failure to connect is reported the same way: nothing was done yet
        module.fail_json(msg=describe_exception(exc, module.params, username) + ". " + NOTHING_CHANGED)


class _ConnectWatch(logging.Handler):
    """Sees kafka-python's bootstrap failures (it logs them and retries until the timeout).

    An authentication or certificate failure cannot heal by retrying, so the watch remembers it and
    closes the connection manager, which ends the bootstrap loop at once instead of after the timeout.
    """

    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.fatal = None
        self.last = None
        self.manager = None

    def emit(self, record):
        for arg in record.args if isinstance(record.args, tuple) else ():
            if not isinstance(arg, BaseException):
                continue
            self.last = arg
            text = str(arg)
            if self.fatal is None and (isinstance(arg, kafka_errors.SaslAuthenticationFailedError)
                                       or isinstance(arg, kafka_errors.UnsupportedSaslMechanismError)
                                       or "CERTIFICATE_VERIFY_FAILED" in text
                                       or "certificate verify failed" in text):
                self.fatal = arg
                if self.manager is not None:
                    self.manager.close()  # runs on kafka-python's IO thread, where close() belongs


def open_admin_client(params, username=None, password=None):
    """A connected KafkaAdminClient; raises the most telling exception when it cannot connect.

    kafka-python retries a refused password until bootstrap_timeout_ms and then only says
    "Unable to bootstrap": the watch turns that into the SaslAuthenticationFailedError it saw.
    """
    watch = _ConnectWatch()
    holder = {}

    def net_client_factory(**configs):
        from kafka.net.compat import KafkaNetClient

        holder["client"] = client = KafkaNetClient(**configs)
        watch.manager = client._manager
        return client

    logger = logging.getLogger("kafka")
    logger.addHandler(watch)
    previous_level = logger.level
    if logger.getEffectiveLevel() > logging.WARNING:
        logger.setLevel(logging.WARNING)
    try:
        return KafkaAdminClient(kafka_client=net_client_factory, **client_config(params, username, password))
    except Exception as exc:
        client = holder.get("client")
        if client is not None:  # the constructor failed after starting the IO thread: stop it
            try:
                client.close()
                client._net.stop()
            except Exception:
                pass
        if watch.fatal is not None:
            raise watch.fatal from exc
        last = watch.last
        if isinstance(exc, kafka_errors.KafkaTimeoutError) and last is not None and not isinstance(last, kafka_errors.KafkaTimeoutError):
            raise kafka_errors.KafkaTimeoutError(f"Unable to bootstrap (last error: {_exc_text(last)})") from exc
        raise
    finally:
        logger.removeHandler(watch)
        logger.setLevel(previous_level)


def try_login(params, username, password):
    """Authenticate as username/password; returns None on success, else the exception (nothing changes)."""
    try:
        client = open_admin_client(params, username, password)
    except Exception as exc:
        return exc
    close_quietly(client)
    return None


def close_quietly(client):
    if client is None:
        return
    try:
        client.close()
    except Exception:
        pass


def raise_for_error_code(code, message, what):
    """Turn a Kafka error code into a KafkaModuleError naming the operation."""
    if not code:
        return
    error = kafka_errors.for_code(code) if HAS_KAFKA else None
    name = error.__name__ if error is not None else f"error code {code}"
    raise KafkaModuleError(f"{what} failed: {name}{': ' + message if message else ''}")
