"""What a run of playbooks/renew-ca.yml does, from the CA files on the controller and the request.

The renewal's state is the set of files in pki_ca_dir (nothing else is kept):
  ca.crt/ca.key            the signing CA;
  ca-next.crt/ca-next.key  a new CA, trusted beside the signing one but not signing yet (after stage `trust`);
  ca-previous.crt/.key     the CA that signed before, still trusted (after the swap of stage `leaves`);
  retired/<serial>.crt     CAs no longer trusted (after stage `retire`).
"""
from __future__ import annotations

try:
    from ansible.errors import AnsibleFilterError
except ImportError:  # the unit tests import this file without Ansible's plugin loader
    AnsibleFilterError = ValueError

STAGES = ("trust", "leaves", "retire")


def _serial(value) -> str:
    """A serial as lower-case hex without separators: given as 12345, '0x3039', '30:39' or '3039' (openssl's -serial)."""
    text = str(value).strip().lower()
    if text.startswith("serial="):
        text = text[len("serial="):]
    if text.startswith("0x"):
        return text[2:].lstrip("0") or "0"
    if ":" in text:
        return text.replace(":", "").lstrip("0") or "0"
    if isinstance(value, int):
        return format(value, "x")
    return text.lstrip("0") or "0"


def ca_renewal_plan(state: dict, stop_after: str = "retire", replace_serial=None, renew_before_days: int = 365) -> dict:
    """The plan of one run.

    state: {"ca": bool, "next": bool, "previous": bool, "serial": signing CA's, "days_left": float (signing CA),
            "previous_serial": ca-previous.crt's, "retired": [serial, ...]}; serials as ints or hex strings.
    Returns {"action": "nothing" | "run", "start": bool (make a new CA), "stages": [...], "reason": str}; raises
    AnsibleFilterError with the reason (nothing changed) for a request that is not safe or not understood.
    """
    if stop_after not in STAGES:
        raise AnsibleFilterError(f"ca_stop_after={stop_after!r}: use one of {', '.join(STAGES)}. Nothing was changed.")
    if not state.get("ca"):
        raise AnsibleFilterError("There is no CA on the controller (pki_ca_dir/ca.crt): deploy first (site.yml or "
                                 "playbooks/certificates.yml); a renewal replaces an existing CA. Nothing was changed.")
    if state.get("next") and state.get("previous"):
        raise AnsibleFilterError("Both ca-next.crt and ca-previous.crt exist in pki_ca_dir: two renewals overlap. "
                                 "See docs/runbooks/certificates.md (recovery). Nothing was changed.")
    stages = list(STAGES[:STAGES.index(stop_after) + 1])
    retired = {_serial(s) for s in state.get("retired", [])}
    current = _serial(state["serial"])
    wanted = _serial(replace_serial) if replace_serial not in (None, "") else None

    if state.get("next") or state.get("previous"):
        # Resuming. A serial, when given, must name the CA being replaced: the signing one before the swap, the
        # previous one after it.
        replaced = current if state.get("next") else _serial(state.get("previous_serial", ""))
        if wanted is not None and wanted != replaced:
            raise AnsibleFilterError(f"A renewal is under way, replacing the CA with serial {replaced}, not {wanted}: "
                                     "resume it without ca_replace_serial. Nothing was changed.")
        if state.get("previous"):
            stages = [s for s in stages if s != "trust"] or ["leaves"]
        step = "new CA trusted, not signing yet" if state.get("next") else "new CA signing, old one still trusted"
        return {"action": "run", "start": False, "stages": stages, "reason": f"resuming a renewal ({step})"}

    if wanted is not None:
        if wanted == current:
            return {"action": "run", "start": True, "stages": stages, "reason": f"replacing the CA with serial {wanted} as asked"}
        if wanted in retired:
            return {"action": "nothing", "start": False, "stages": [], "reason": f"the CA with serial {wanted} is retired already"}
        raise AnsibleFilterError(f"ca_replace_serial={replace_serial}: no such CA here (signing CA: serial {current}). "
                                 "Nothing was changed.")
    if float(state["days_left"]) <= renew_before_days:
        return {"action": "run", "start": True, "stages": stages,
                "reason": f"the CA expires in {float(state['days_left']):.0f} days (ca_renew_before_days={renew_before_days})"}
    return {"action": "nothing", "start": False, "stages": [],
            "reason": f"the CA is valid for {float(state['days_left']):.0f} more days; renewing starts "
                      f"{renew_before_days} days before it expires, or with -e ca_replace_serial=<its serial>"}


class FilterModule:
    """CA renewal plan."""

    def filters(self):
        return {"ca_renewal_plan": ca_renewal_plan}
