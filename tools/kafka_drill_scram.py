#!/usr/bin/env python3
"""Check that every Kafka broker accepts SCRAM logins; optionally re-assert the credentials through one that does.

Why: on the lab (Kafka 4.3.1, KRaft, combined broker+controller) brokers restarted after a certain point came
back rejecting every SCRAM login (admin, service users) while the broker that had not restarted kept accepting
them; the credentials were intact in the metadata log, and writing them again (same passwords, new salt) through
the healthy broker fixed the restarted ones at once. See docs/runbooks/failover.md ("SCRAM logins after a
restart"). playbooks/broker-failover.yml runs this after every restart; operators can run it by hand.

    kafka_drill_scram.py --config scram.json            # probe: exit 0 when every broker accepts the admin
    kafka_drill_scram.py --config scram.json --repair   # probe, re-assert through a healthy broker, probe again

The config file (private, it holds passwords) is JSON: {"brokers": [{"id": 1, "address": "host:9092"}, ...] (or
[[1, "host:9092"], ...]),
"admin_user": "admin", "passwords": {"admin": "...", "telegraf": "..."}, "ca_file": "/etc/isobar/pki/ca.crt",
"iterations": 8192, "api_version": "4.0"}. Every user of "passwords" is re-asserted by --repair (with that
password: nothing changes for its clients). Prints a JSON result; never prints a password.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

try:  # shipped next to this program on the hosts
    import kafka_net_fix
except ImportError:  # in the repository: the collection's module_utils
    from ansible_collections.isobar.pipeline.plugins.module_utils import kafka_net_fix

kafka_net_fix.apply()  # else kafka-python 3.0.12 drops a response read together with the broker closing


def _config(data: dict, address: str, user: str, password: str) -> dict:
    return dict(bootstrap_servers=[address], security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
                sasl_plain_username=user, sasl_plain_password=password, ssl_cafile=data["ca_file"],
                api_version=tuple(int(x) for x in str(data.get("api_version", "4.0")).split(".")[:2]),
                request_timeout_ms=15000, bootstrap_timeout_ms=15000, reconnect_backoff_max_ms=2000,
                client_id="isobar-drill-scram")


def login(data: dict, address: str, user: str, password: str) -> str | None:
    """None when the broker at address accepts user/password (bootstrapping from it alone), else the error."""
    from kafka import KafkaAdminClient

    try:
        client = KafkaAdminClient(**_config(data, address, user, password))
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"[:300]
    try:
        client.close()
    except Exception:
        pass
    return None


def probe(data: dict, users: list[str]) -> dict:
    return {str(b["id"]): {user: login(data, b["address"], user, data["passwords"][user]) or "ok" for user in users}
            for b in data["brokers"]}


def reassert(data: dict, through: dict) -> dict:
    """Upsert every user's credential (same password, new salt), sent to the broker `through` only."""
    from kafka import KafkaAdminClient
    from kafka.admin import ScramMechanism, UserScramCredentialUpsertion
    from kafka.protocol.admin import AlterUserScramCredentialsRequest

    admin = data["admin_user"]
    client = KafkaAdminClient(**_config(data, through["address"], admin, data["passwords"][admin]))
    try:
        upserts = [UserScramCredentialUpsertion(user, ScramMechanism.SCRAM_SHA_512, password,
                                                iterations=int(data.get("iterations", 8192)))
                   for user, password in sorted(data["passwords"].items())]
        request = AlterUserScramCredentialsRequest(deletions=[], upsertions=[
            (u.user, int(u.mechanism), u.iterations, u.salt, u.salted_password) for u in upserts])

        async def send():  # to this broker only: the others may be the ones that reject the admin
            return await client._manager.send(request, node_id=int(through["id"]))

        response = client._manager.run(send)
        return {r.user: (r.error_message or f"error {r.error_code}") if r.error_code else "ok" for r in response.results}
    finally:
        client.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--repair", action="store_true")
    args = parser.parse_args()
    try:
        with open(args.config) as handle:
            data = json.load(handle)
        admin = data["admin_user"]
        data["passwords"][admin]
        data["brokers"] = [b if isinstance(b, dict) else {"id": b[0], "address": b[1]} for b in data["brokers"]]
        brokers = data["brokers"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        sys.exit(f"kafka_drill_scram: cannot read {args.config}: {type(exc).__name__} "
                 "(expected brokers, admin_user, passwords with the admin, ca_file)")

    result = {"before": probe(data, [admin]), "repaired": None, "after": None}
    rejecting = [b for b in brokers if result["before"][str(b["id"])][admin] != "ok"]
    healthy = [b for b in brokers if result["before"][str(b["id"])][admin] == "ok"]
    result["rejecting_brokers"] = [b["id"] for b in rejecting]
    if rejecting and args.repair:
        if not healthy:
            result["repaired"] = {"error": "no broker accepts the admin login: nothing to re-assert through "
                                           "(see docs/runbooks/failover.md)"}
        else:
            try:
                result["repaired"] = {"through": healthy[0]["id"], "users": reassert(data, healthy[0])}
            except Exception as exc:
                result["repaired"] = {"through": healthy[0]["id"], "error": f"{type(exc).__name__}: {exc}"[:300]}
            time.sleep(3)  # the new credential records reach every broker through the metadata log
            result["after"] = probe(data, sorted(data["passwords"]))
    print(json.dumps(result, indent=2))
    final = result["after"] if result["after"] is not None else result["before"]
    return 0 if all(v == "ok" for per_broker in final.values() for v in per_broker.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
