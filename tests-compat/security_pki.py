"""Test key material made with the openssl CLI (real certificates and keys, as docs/security.md
shows): a CA, a server certificate for 127.0.0.1/localhost, a client certificate signed by the
CA, a client certificate from an untrusted CA, and RSA and EC keys that sign OAUTHBEARER JWTs
(with the JWKS the broker trusts). JWTs are signed with `openssl dgst`, so the tests need no
extra Python package."""

import base64
import json
import os
import subprocess
import time


def _run(*args, cwd, stdin=None):
    proc = subprocess.run(list(args), cwd=cwd, input=stdin, capture_output=True, timeout=60)
    assert proc.returncode == 0, f"{' '.join(args)}: {proc.stderr.decode(errors='replace')}"
    return proc.stdout


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_ca(d, name, cn):
    _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
         "-out", f"{name}.crt", "-days", "2", "-subj", f"/CN={cn}", cwd=d)


def make_cert(d, name, ca, subject, ext):
    _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
         "-out", f"{name}.csr", "-subj", subject, cwd=d)
    with open(os.path.join(d, f"{name}.ext"), "w") as f:
        f.write(ext)
    _run("openssl", "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
         "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", f"{name}.ext", cwd=d)


SERVER_EXT = "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
CLIENT_EXT = "extendedKeyUsage=clientAuth\n"


class Pki:
    def __init__(self, d):
        self.dir = d
        make_ca(d, "ca", "weir-test-ca")
        make_cert(d, "server", "ca", "/CN=localhost", SERVER_EXT)
        make_cert(d, "client", "ca", "/O=Acme/OU=clients/CN=alice", CLIENT_EXT)
        make_ca(d, "rogue-ca", "rogue-ca")
        make_cert(d, "rogue", "rogue-ca", "/O=Acme/OU=clients/CN=alice", CLIENT_EXT)
        _run("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
             "-out", "jwt-rs.key", cwd=d)
        _run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", "jwt-ec.key", cwd=d)
        _run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", "jwt-untrusted.key", cwd=d)
        modulus = _run("openssl", "rsa", "-in", "jwt-rs.key", "-noout", "-modulus", cwd=d)
        n = bytes.fromhex(modulus.decode().strip().split("=", 1)[1])
        spki = _run("openssl", "pkey", "-in", "jwt-ec.key", "-pubout", "-outform", "DER", cwd=d)
        point = spki[-65:]
        assert point[0] == 4
        jwks = {"keys": [
            {"kty": "RSA", "kid": "rs-1", "alg": "RS256", "use": "sig", "n": b64url(n), "e": "AQAB"},
            {"kty": "EC", "kid": "ec-1", "crv": "P-256", "alg": "ES256", "use": "sig",
             "x": b64url(point[1:33]), "y": b64url(point[33:65])},
        ]}
        with open(self.path("jwks.json"), "w") as f:
            json.dump(jwks, f)

    def path(self, name):
        return os.path.join(self.dir, name)

    def token(self, alg="RS256", kid=None, key=None, sub="svc-analytics", exp_in_s=600,
              aud="weir", iss="https://idp.test", **extra):
        """A signed JWT. `key` names a key file in the PKI dir (default: the trusted one)."""
        now = int(time.time())
        kid = kid or {"RS256": "rs-1", "ES256": "ec-1"}[alg]
        key = key or {"RS256": "jwt-rs.key", "ES256": "jwt-ec.key"}[alg]
        claims = {"sub": sub, "iat": now, "exp": now + exp_in_s, "aud": aud, "iss": iss, **extra}
        header = {"alg": alg, "typ": "JWT", "kid": kid}
        signing_input = f"{b64url(json.dumps(header))}.{b64url(json.dumps(claims))}".encode()
        sig = _run("openssl", "dgst", "-sha256", "-sign", key, cwd=self.dir, stdin=signing_input)
        if alg == "ES256":
            sig = _der_ecdsa_to_raw(sig, 32)
        return f"{signing_input.decode()}.{b64url(sig)}"


def _der_ecdsa_to_raw(der, size):
    """ECDSA-Sig-Value (DER SEQUENCE of two INTEGERs) to JWS's r || s."""
    assert der[0] == 0x30
    i = 2
    out = b""
    for _ in range(2):
        assert der[i] == 0x02
        length = der[i + 1]
        value = der[i + 2:i + 2 + length].lstrip(b"\x00")
        out += value.rjust(size, b"\x00")
        i += 2 + length
    return out
