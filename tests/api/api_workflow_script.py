#!/usr/bin/env python3
"""A script that runs a certificate's life through the portal's API only (standard library).

    api_workflow_script.py BASE_URL OUTPUT_DIR EMPLOYEE:PW APPROVER:PW [APPROVER2:PW AGENT:PW AGENT_P12 AGENT_P12_PW]

request → approve → download (PKCS#12, PEM, chain) → revoke → CRL; with the last four
arguments also key recovery: the employee asks for the revoked certificate's key back,
two approvers approve, an agent completes with the agent's PKCS#12, the employee downloads.

Each person's password is used once, to create an API token; everything else goes with
`Authorization: Bearer <token>`. Prints a JSON summary; exits non-zero at the first
unexpected answer.
"""

import base64
import json
import secrets
import sys
import urllib.error
import urllib.request
from pathlib import Path

PASSPHRASE = "a passphrase for the script"


def call(base, method, path, *, token=None, basic=None, body=None, files=None, expect=200):
    request = urllib.request.Request(base + path, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    elif basic:
        request.add_header("Authorization", "Basic " + base64.b64encode(basic.encode()).decode())
    data = None
    if files is not None:  # multipart/form-data: fields in body, files as {name: (filename, bytes)}
        boundary = secrets.token_hex(16)
        parts = []
        for name, value in (body or {}).items():
            parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
        for name, (filename, content) in files.items():
            parts.append(
                f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n".encode() + content + b"\r\n"
            )
        data = b"".join(parts) + f"--{boundary}--\r\n".encode()
        request.add_header("Content-Type", f"multipart/form-data; boundary={boundary}")
    elif body is not None:
        data = json.dumps(body).encode()
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, data=data, timeout=60) as response:
            status, content, ctype = response.status, response.read(), response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        status, content, ctype = error.code, error.read(), error.headers.get("Content-Type", "")
    if status != expect:
        sys.exit(f"{method} {path}: {status}, expected {expect}: {content[:500]!r}")
    return json.loads(content) if ctype.startswith("application/json") else content


def token_of(base, credentials, name):
    return call(base, "POST", "/api/v1/tokens/", basic=credentials, body={"name": name}, expect=201)


def main(base, out, employee, approver, approver2=None, agent=None, agent_p12=None, agent_passphrase=None):
    out = Path(out)
    base = base.rstrip("/")
    employee_token = token_of(base, employee, "enroll script")
    me, boss = employee_token["token"], token_of(base, approver, "approve script")["token"]

    request = call(base, "POST", "/api/v1/requests/", token=me, body={"key_type": "ec-p256"}, expect=201)
    approved = call(base, "POST", f"/api/v1/requests/{request['id']}/approve/", token=boss)
    if approved["state"] != "issued":
        sys.exit(f"request {request['id']} is {approved['state']}: {approved['reason']}")
    serial = approved["certificate"]["serial"]

    bundle = call(
        base, "POST", f"/api/v1/certificates/{serial}/pkcs12/", token=me, body={"passphrase": PASSPHRASE, "format": "modern"}
    )
    (out / "employee.p12").write_bytes(bundle)
    (out / "employee.pem").write_bytes(call(base, "GET", f"/api/v1/certificates/{serial}/pem/", token=me))
    (out / "chain.pem").write_bytes(call(base, "GET", "/api/v1/ca/issuing-ca/chain/"))

    revoked = call(base, "POST", f"/api/v1/certificates/{serial}/revoke/", token=me, body={"reason": "key_compromise"})
    (out / "issuing-ca.crl").write_bytes(call(base, "GET", "/api/v1/ca/issuing-ca/crl/"))
    summary = {
        "request": request["id"],
        "serial": serial,
        "status": revoked["status"],
        "revocation_reason": revoked["revocation_reason"],
        "passphrase": PASSPHRASE,
    }

    if agent:
        # The key stays escrowed after revocation: mail encrypted to it must stay readable.
        boss2, keeper = token_of(base, approver2, "approve script")["token"], token_of(base, agent, "agent script")["token"]
        recovery = call(
            base, "POST", "/api/v1/recoveries/", token=me, body={"certificate": serial, "reason": "Laptop stolen"}, expect=201
        )
        call(base, "POST", f"/api/v1/recoveries/{recovery['id']}/approve/", token=boss, body={"comment": "ok"})
        decided = call(base, "POST", f"/api/v1/recoveries/{recovery['id']}/approve/", token=boss2, body={"comment": "ok"})
        completed = call(
            base, "POST", f"/api/v1/recoveries/{recovery['id']}/complete/", token=keeper,
            body={"passphrase": agent_passphrase}, files={"agent_pkcs12": ("agent.p12", Path(agent_p12).read_bytes())},
        )
        recovered = call(
            base, "POST", f"/api/v1/recoveries/{recovery['id']}/pkcs12/", token=me, body={"passphrase": PASSPHRASE}
        )
        (out / "recovered.p12").write_bytes(recovered)
        summary["recovery"] = {"id": recovery["id"], "after_approvals": decided["status"], "status": completed["status"]}

    call(base, "DELETE", f"/api/v1/tokens/{employee_token['id']}/", token=me, expect=204)
    summary["after_token_revoked"] = call(base, "GET", "/api/v1/certificates/", token=me, expect=401)["error"]["message"]
    print(json.dumps(summary))


if __name__ == "__main__":
    main(*sys.argv[1:])
