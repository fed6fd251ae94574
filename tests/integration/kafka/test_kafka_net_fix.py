"""plugins/module_utils/kafka_net_fix.py against the real local Kafka: a refused password is reported as such.

kafka-python 3.0.12 drops a response read in the same pass as the broker closing the connection; the
fixture's broker closes a refused login at once, and CPU burners make the client slow enough to read both
together. Without the fix about half of these logins end in "Unable to bootstrap" after the timeout.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import sys

from conftest import ROOT

from ansible_collections.isobar.pipeline.plugins.module_utils import kafka_client  # noqa: F401  (applies the fix on import)
from ansible_collections.isobar.pipeline.plugins.module_utils import kafka_net_fix

REFUSED_LOGINS = 30


def _burn(stop):
    while not stop.is_set():
        pass


def test_the_pinned_kafka_python_gets_the_fix():
    # A new kafka-python: read its kafka/net/transport.py read loop, then update PATCHED_VERSIONS.
    assert kafka_net_fix.apply() is True, "kafka_net_fix does not know this kafka-python version"


def test_refused_password_reads_as_authentication_failure_on_a_busy_client(kafka_server):
    params = dict(kafka_server.connection_args(), sasl_mechanism="SCRAM-SHA-512", ssl_check_hostname=True,
                  connect_timeout=10, request_timeout=30)
    stop = multiprocessing.Event()
    burners = [multiprocessing.Process(target=_burn, args=(stop,)) for _ in range(2 * (os.cpu_count() or 1))]
    for burner in burners:
        burner.start()
    outcomes = collections.Counter()
    try:
        for _ in range(REFUSED_LOGINS):
            error = kafka_client.try_login(params, kafka_server.admin_user, "not-the-admin-password")
            outcomes[type(error).__name__] += 1
    finally:
        stop.set()
        for burner in burners:
            burner.join()
    assert outcomes == {"SaslAuthenticationFailedError": REFUSED_LOGINS}, dict(outcomes)
