#!/usr/bin/env python3
"""Generate SigV4-signed requests with botocore and the AWS CLI.

Writes one raw HTTP/1.1 request per file (<name>.http) into the output
directory, exactly as the client puts it on the wire, plus VERSIONS naming the
client versions. The Go tests verify these requests with internal/sigv4.

  python3 gen_botocore.py OUTDIR [--no-cli]

botocore cases are signed at a fixed time (2026-11-27T23:38:41Z) so their
bytes are stable; the AWS CLI cases are captured live from the real `aws`
command against a local capture server, at the current time (the Go test takes
"now" from the request's own X-Amz-Date).

Credentials are the example values also used by the Go tests; nothing real.
"""

import base64
import datetime
import json
import http.server
import os
import subprocess
import sys
import threading
import urllib.parse

import botocore
import botocore.auth
import botocore.session
from botocore.config import Config

SESSION = ("ASIAEXAMPLEKEYID0001", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
           "IQoJb3JpZ2luX2VjEXAMPLETOKEN/ke+yless==")
LONGTERM = ("AKIAIOSFODNN7EXAMPLE", "je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY", None)
SIGN_TIME = datetime.datetime(2026, 11, 27, 23, 38, 41, tzinfo=datetime.timezone.utc)
ENDPOINT = "http://127.0.0.1:8400"

TRUST_POLICY = (
    '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":'
    '{"Federated":"arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"},'
    '"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringLike":'
    '{"token.actions.githubusercontent.com:sub":"repo:org/*"}}}]}')
SESSION_POLICY = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:Get*","Resource":"arn:aws:s3:::bücket/ünïcode *"}]}'


class Captured(Exception):
    """Raised from before-send to stop botocore after capturing the request."""

    def __init__(self, raw):
        super().__init__("captured")
        self.raw = raw


def raw_http(method, url, headers, body):
    u = urllib.parse.urlsplit(url)
    target = (u.path or "/") + ("?" + u.query if u.query else "")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {u.netloc}"]
    for k, v in headers.items():
        if isinstance(v, bytes):
            v = v.decode("utf-8")
        lines.append(f"{k}: {v}")
    if isinstance(body, str):
        body = body.encode("utf-8")
    body = body or b""
    if body and not any(k.lower() == "content-length" for k in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8") + body


def capture(request, **_):
    body = request.body
    if hasattr(body, "read"):
        body = body.read()
    raise Captured(raw_http(request.method, request.url, request.headers, body))


def client(service, region, creds, endpoint=ENDPOINT):
    s = botocore.session.get_session()
    c = s.create_client(service, region_name=region, endpoint_url=endpoint,
                        aws_access_key_id=creds[0], aws_secret_access_key=creds[1],
                        aws_session_token=creds[2],
                        config=Config(retries={"total_max_attempts": 1}))
    c.meta.events.register("before-send", capture)
    return c


def signed(call):
    try:
        call()
    except Captured as c:
        return c.raw
    raise RuntimeError("request was not captured")


def presigned(url, method="GET", headers=None):
    # botocore signs a presigned URL with the operation's HTTP method (POST
    # for the Query protocol) unless HttpMethod is given; the URL must then be
    # sent with that method.
    return raw_http(method, url, headers or {}, b"")


def botocore_cases():
    # Sign at a fixed time so the fixtures are reproducible.
    botocore.auth.get_current_datetime = lambda: SIGN_TIME.replace(tzinfo=None)
    yield "botocore-sts-getcalleridentity-session", signed(
        lambda: client("sts", "eu-west-1", SESSION).get_caller_identity())
    yield "botocore-sts-getcalleridentity-longterm", signed(
        lambda: client("sts", "us-east-1", LONGTERM).get_caller_identity())
    yield "botocore-sts-endpoint-with-path", signed(
        lambda: client("sts", "us-west-2", SESSION, ENDPOINT + "/keyless/sts/").get_caller_identity())
    yield "botocore-sts-assumerole-unicode-policy", signed(
        lambda: client("sts", "eu-central-1", LONGTERM).assume_role(
            RoleArn="arn:aws:iam::123456789012:role/ci-deploy", RoleSessionName="ci+run=1,a@b.c",
            Policy=SESSION_POLICY, DurationSeconds=900))
    yield "botocore-iam-createrole-session", signed(
        lambda: client("iam", "us-east-1", SESSION).create_role(
            RoleName="ci-deploy", Path="/ci/", AssumeRolePolicyDocument=TRUST_POLICY,
            Tags=[{"Key": "team", "Value": "a b&c=d"}]))
    yield "botocore-iam-listroles-longterm", signed(
        lambda: client("iam", "us-east-1", LONGTERM).list_roles(PathPrefix="/ci/", MaxItems=10))
    yield "botocore-sts-presigned-getcalleridentity-get", presigned(
        client("sts", "eu-west-1", SESSION).generate_presigned_url(
            "get_caller_identity", ExpiresIn=60, HttpMethod="GET"))
    yield "botocore-sts-presigned-getcalleridentity-post", presigned(
        client("sts", "eu-west-1", SESSION).generate_presigned_url(
            "get_caller_identity", ExpiresIn=60), method="POST")
    yield "botocore-iam-presigned-listroles", presigned(
        client("iam", "us-east-1", LONGTERM).generate_presigned_url(
            "list_roles", Params={"PathPrefix": "/ci/"}, ExpiresIn=300, HttpMethod="GET"))


STS_OK = (b'<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
          b'<GetCallerIdentityResult><Arn>arn:aws:sts::123456789012:assumed-role/ci/s</Arn>'
          b'<UserId>AROAEXAMPLE:s</UserId><Account>123456789012</Account></GetCallerIdentityResult>'
          b'<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></GetCallerIdentityResponse>')
IAM_OK = (b'<ListRolesResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><ListRolesResult>'
          b'<IsTruncated>false</IsTruncated><Roles/></ListRolesResult>'
          b'<ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></ListRolesResponse>')


def cli_cases():
    """Run the real AWS CLI against a capture server."""
    got = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n)
            head = self.requestline + "\r\n" + "".join(
                f"{k}: {v}\r\n" for k, v in self.headers.items())
            got.append(head.encode("latin-1") + b"\r\n" + body)
            out = IAM_OK if b"ListRoles" in body else STS_OK
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{srv.server_address[1]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID=SESSION[0], AWS_SECRET_ACCESS_KEY=SESSION[1],
               AWS_SESSION_TOKEN=SESSION[2], AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_MAX_ATTEMPTS="1")
    try:
        for name, args in [
            ("cli-sts-get-caller-identity", ["sts", "get-caller-identity", "--region", "eu-west-1"]),
            ("cli-iam-list-roles", ["iam", "list-roles", "--path-prefix", "/ci/", "--region", "us-east-1"]),
        ]:
            n = len(got)
            subprocess.run(["aws", *args, "--endpoint-url", url], env=env, check=True,
                           stdout=subprocess.DEVNULL, timeout=60)
            if len(got) != n + 1:
                raise RuntimeError(f"{name}: captured {len(got) - n} requests")
            yield name, got[-1]
        # `aws eks get-token`: the EKS / Vault-style presigned GetCallerIdentity,
        # a URL inside the token, with the cluster name as a signed header.
        env["AWS_STS_REGIONAL_ENDPOINTS"] = "regional"
        out = subprocess.run(["aws", "eks", "get-token", "--cluster-name", "prod-cluster",
                              "--region", "eu-west-1", "--endpoint-url", url],
                             env=env, check=True, capture_output=True, text=True, timeout=60)
        token = json.loads(out.stdout)["status"]["token"]
        b64 = token.removeprefix("k8s-aws-v1.")
        presigned_url = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)).decode()
        yield "cli-eks-get-token-presigned", presigned(
            presigned_url, headers={"x-k8s-aws-id": "prod-cluster"})
    finally:
        srv.shutdown()


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    versions = [f"botocore {botocore.__version__}"]
    cases = list(botocore_cases())
    if "--no-cli" not in sys.argv:
        cases += list(cli_cases())
        v = subprocess.run(["aws", "--version"], capture_output=True, text=True)
        versions.append((v.stdout or v.stderr).strip())
    for name, raw in cases:
        with open(os.path.join(out, name + ".http"), "wb") as f:
            f.write(raw)
    with open(os.path.join(out, "VERSIONS"), "w") as f:
        f.write("\n".join(versions) + "\n")


if __name__ == "__main__":
    main()
