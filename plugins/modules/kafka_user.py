#!/usr/bin/python
# Copyright: Isobar contributors
# Apache-2.0
"""Ansible module: manage the SCRAM credential of one Kafka user, live."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: kafka_user
short_description: Create, update (rotate) or delete a Kafka SCRAM user over SASL_SSL
description:
  - Manages the SCRAM credential of one user with AlterUserScramCredentials, which takes effect at once
    on a running cluster (no restart); existing sessions stay, new logins need the new password.
  - Kafka never returns passwords, so with O(update_password=always) an existing credential is checked by
    logging in as the user with O(password) over the bootstrap listener. If that login works, nothing
    changes; if the broker refuses it, the credential is replaced (password rotation).
  - The password is never returned nor shown in diffs.
version_added: "1.0.0"
author: Isobar contributors (@isobar)
extends_documentation_fragment:
  - isobar.pipeline.kafka_connection
  - isobar.pipeline.attributes
options:
  name:
    description: SCRAM user name (the principal is C(User:<name>)).
    type: str
    required: true
  password:
    description: The user's password. Required with O(state=present).
    type: str
  mechanism:
    description: SCRAM mechanism of the credential. The login check uses it, so the bootstrap listener must enable it.
    type: str
    choices: [SCRAM-SHA-256, SCRAM-SHA-512]
    default: SCRAM-SHA-512
  iterations:
    description: PBKDF2 iterations of a new credential (Kafka accepts 4096 to 16384). A different count on an existing credential replaces it.
    type: int
    default: 8192
  update_password:
    description:
      - V(always) makes the credential match O(password) (verified by a login).
      - V(on_create) only sets it when the user has no credential for O(mechanism).
    type: str
    choices: [always, on_create]
    default: always
  state:
    description: V(present) creates or updates the credential, V(absent) deletes the credential of O(mechanism).
    type: str
    choices: [present, absent]
    default: present
  sasl_username:
    description: SCRAM user to authenticate as (needs ALTER on the cluster, e.g. a super user).
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
notes:
  - Use C(no_log) on the task, the password is the payload.
  - Rotating the password of O(sasl_username) itself is possible, but later tasks must then use the new one.
"""

EXAMPLES = r"""
- name: SCRAM user of the producer (rotated when the vault's password changes)
  kafka_user:
    name: producer
    password: "{{ kafka_scram_passwords['producer'] }}"
    bootstrap_servers: ["172.30.10.11:9092", "172.30.10.12:9092"]
    sasl_username: admin
    sasl_password: "{{ kafka_scram_passwords['admin'] }}"
    ssl_cafile: /etc/isobar/pki/ca.crt
    api_version: "4.3"
  no_log: true

- name: Remove a user's credential
  kafka_user:
    name: legacy
    state: absent
    bootstrap_servers: ["172.30.10.11:9092"]
    sasl_username: admin
    sasl_password: "{{ kafka_scram_passwords['admin'] }}"
    ssl_cafile: /etc/isobar/pki/ca.crt
"""

RETURN = r"""
user:
  description: The user's SCRAM credentials after the run (predicted in check mode); never the password.
  returned: always
  type: dict
  sample: {"name": "producer", "credentials": [{"mechanism": "SCRAM-SHA-512", "iterations": 8192}]}
operation:
  description: V(create), V(update), V(delete) or V(none).
  returned: always
  type: str
reason:
  description: Why the action was chosen (e.g. "the password does not authenticate").
  returned: always
  type: str
"""

import traceback

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.isobar.pipeline.plugins.module_utils.kafka_client import (
    KAFKA_CONNECTION_ARGS,
    NOTHING_CHANGED,
    KafkaModuleError,
    close_quietly,
    connect,
    describe_exception,
    try_login,
)
from ansible_collections.isobar.pipeline.plugins.module_utils.kafka_plan import (
    await_read_your_write, plan_user, validate_user_params)

try:
    import kafka.errors as kafka_errors
    from kafka.admin import ScramMechanism, UserScramCredentialDeletion, UserScramCredentialUpsertion
except ImportError:  # reported by connect()
    pass


def _mechanism_enum(name):
    return ScramMechanism[name.replace("-", "_")]


def describe_user(client, name):
    """[{mechanism, iterations}] of the user; [] when it has no SCRAM credential."""
    try:
        described = client.describe_user_scram_credentials([name])
    except kafka_errors.ResourceNotFoundError:
        return []
    entry = described.get(name) or {}
    if entry.get("error"):
        if "not exist" in entry["error"] or "No such" in entry["error"] or "ResourceNotFound" in entry["error"]:
            return []
        raise KafkaModuleError(f"describing the SCRAM credentials of {name!r} failed: {entry['error']}")
    return sorted(
        ({"mechanism": info["mechanism"].name.replace("_", "-"), "iterations": info["iterations"]}
         for info in entry.get("credential_infos") or []),
        key=lambda c: c["mechanism"])


def password_works(params, name, password, mechanism):
    """Log in as the user; True/False, or a KafkaModuleError when the answer is not about the password."""
    login_params = dict(params, sasl_mechanism=mechanism)
    error = try_login(login_params, name, password)
    if error is None:
        return True
    if isinstance(error, kafka_errors.SaslAuthenticationFailedError):
        return False
    raise KafkaModuleError(
        "cannot verify the current password by logging in as the user: "
        + describe_exception(error, login_params, name) + f". {NOTHING_CHANGED}")


def main():
    argument_spec = dict(
        name=dict(type="str", required=True),
        password=dict(type="str", no_log=True),
        mechanism=dict(type="str", default="SCRAM-SHA-512", choices=["SCRAM-SHA-256", "SCRAM-SHA-512"]),
        iterations=dict(type="int", default=8192),
        update_password=dict(type="str", default="always", choices=["always", "on_create"], no_log=False),
        state=dict(type="str", default="present", choices=["present", "absent"]),
    )
    argument_spec.update(KAFKA_CONNECTION_ARGS)
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[("state", "present", ["password"])])
    p = module.params
    name = p["name"]
    problems = validate_user_params(name, p["state"], p["password"], p["mechanism"], p["iterations"])
    if problems:
        module.fail_json(msg=f"kafka_user {name!r}: " + "; ".join(problems) + ". " + NOTHING_CHANGED)

    client = connect(module)
    try:
        credentials = describe_user(client, name)
        current = next((c["iterations"] for c in credentials if c["mechanism"] == p["mechanism"]), None)
        works = None
        if (p["state"] == "present" and current is not None and p["update_password"] == "always"
                and current == p["iterations"]):
            works = password_works(p, name, p["password"], p["mechanism"])
        action, reason = plan_user(current, p["state"], p["iterations"], p["update_password"], works)
        after = credentials
        if action:
            after = [c for c in credentials if c["mechanism"] != p["mechanism"]]
            if action != "delete":
                after.append({"mechanism": p["mechanism"], "iterations": p["iterations"]})
            after.sort(key=lambda c: c["mechanism"])
        if action and not module.check_mode:
            if action == "delete":
                alteration = UserScramCredentialDeletion(name, _mechanism_enum(p["mechanism"]))
            else:
                alteration = UserScramCredentialUpsertion(name, _mechanism_enum(p["mechanism"]), p["password"],
                                                          iterations=p["iterations"])
            errors = client.alter_user_scram_credentials([alteration])
            if errors.get(name):
                raise KafkaModuleError(f"{action} of the SCRAM credential failed: {errors[name]}")
            expected = after
            after, seen = await_read_your_write(lambda: describe_user(client, name), expected)
            if not seen:
                raise KafkaModuleError(
                    f"the {action} was acknowledged but the cluster still describes {after!r} instead of "
                    f"{expected!r} after 15 s: check that every broker follows the controller's metadata")
            if action != "delete":
                # The credential is in the metadata: wait until a login with it succeeds, so the next task
                # (a client restarted with this password) does not race the brokers.
                dummy, usable = await_read_your_write(
                    lambda: password_works(p, name, p["password"], p["mechanism"]), True)
                if not usable:
                    raise KafkaModuleError(f"the {action} was applied but logging in with the new password "
                                           "still fails after 15 s")
    except KafkaModuleError as exc:
        close_quietly(client)
        module.fail_json(msg=f"kafka_user {name!r}: {exc}")
    except Exception as exc:
        close_quietly(client)
        module.fail_json(msg=f"kafka_user {name!r}: unexpected {type(exc).__name__}: {exc}",
                         exception=traceback.format_exc())
    close_quietly(client)

    changed = action is not None
    result = dict(changed=changed, operation=action or "none", reason=reason,
                  user={"name": name, "credentials": after})
    if module._diff:
        password_state = {"update": "<changed>", "create": "<set>"}.get(action, "<unchanged>")
        result["diff"] = {
            "before": {"name": name, "credentials": credentials, "password": "<masked>" if current is not None else None},
            "after": {"name": name, "credentials": after,
                      "password": None if action == "delete" else password_state},
        }
    module.exit_json(**result)


if __name__ == "__main__":
    main()
