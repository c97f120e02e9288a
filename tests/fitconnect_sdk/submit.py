"""Drive the hub's FIT-Connect intake with the independent PyPI SDK
`fitconnect` 0.4.2 (and check its event log with `jwcrypto`).

Used by tests/fit_connect_intake.rs; runs in the venv target/fitconnect-venv.

  submit.py submit --token-url URL --api-url URL --client-id ID
      --client-secret S --destination UUID --leika URN --data FILE
      [--attachment FILE] [--schema-uri URI]
    Submits one application with the SDK's all-in-one `submission()`
    (token, destination + key lookup, announce, attachment upload, metadata
    1.0.0 with SHA-512 hashes, submit; JWE RSA-OAEP-256/A256GCM, zip DEF,
    thumbprint kid). Prints the API's answer as JSON.

  submit.py events --token-url URL --api-url URL --client-id ID
      --client-secret S --case UUID --jwks-url URL
    Fetches GET /cases/{case}/events, verifies every SET (PS512) against
    the JWK set with jwcrypto, prints [{header, claims}] as JSON.
"""

import argparse
import json
import sys

import requests
from fitconnect import Environment, FITConnectClient
from jwcrypto import jwk, jws


def client(args):
    c = FITConnectClient(Environment.TESTING, args.client_id, args.client_secret)
    # The SDK keeps its endpoints as plain attributes: point them at the hub.
    c.token_url = args.token_url
    c.submission_api_url = args.api_url
    return c


def submit(args):
    c = client(args)
    with open(args.data, "rb") as f:
        data = f.read()
    attachments = []
    if args.attachment:
        with open(args.attachment, "rb") as f:
            attachments.append(f.read())
    answer = c.submission(
        args.destination,
        args.leika,
        data=data,
        data_schema={"schemaUri": args.schema_uri, "mimeType": "application/json"},
        attachments=attachments,
    )
    print(json.dumps(answer))


def events(args):
    token = requests.post(
        args.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": args.client_id,
            "client_secret": args.client_secret,
        },
        timeout=30,
    ).json()["access_token"]
    log = requests.get(
        f"{args.api_url}/cases/{args.case}/events",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    log.raise_for_status()
    keys = jwk.JWKSet.from_json(requests.get(args.jwks_url, timeout=30).text)
    out = []
    for token in log.json()["eventLog"]:
        signed = jws.JWS()
        signed.deserialize(token)
        kid = signed.jose_header.get("kid")
        key = keys.get_key(kid)
        if key is None:
            sys.exit(f"no key {kid!r} in the JWK set")
        signed.verify(key, alg="PS512")  # raises on a bad signature
        out.append({"header": signed.jose_header, "claims": json.loads(signed.payload)})
    print(json.dumps(out))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command", required=True)
    for name in ("submit", "events"):
        s = sub.add_parser(name)
        s.add_argument("--token-url", required=True)
        s.add_argument("--api-url", required=True)
        s.add_argument("--client-id", required=True)
        s.add_argument("--client-secret", required=True)
        if name == "submit":
            s.add_argument("--destination", required=True)
            s.add_argument("--leika", required=True)
            s.add_argument("--data", required=True)
            s.add_argument("--attachment")
            s.add_argument("--schema-uri", default="https://example.org/antrag.schema.json")
        else:
            s.add_argument("--case", required=True)
            s.add_argument("--jwks-url", required=True)
    args = p.parse_args()
    {"submit": submit, "events": events}[args.command](args)


if __name__ == "__main__":
    main()
