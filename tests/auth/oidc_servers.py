"""Real OpenID Connect providers on loopback for the tests.

- ``MockProvider``: the ``oidc-provider-mock`` server (PyPI) in its own process. It signs
  ID tokens with RS256 and its own key; tokens are obtained through its real
  authorization-code flow over HTTP.
- ``KeyServer``: a tiny ``http.server`` serving a discovery document and a JWKS whose
  keys the test controls (ES256, rotation, removal), signing tokens with them. Its token
  endpoint redeems codes the test grants, for public clients, and enforces PKCE (S256),
  which the mock does not.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.server import free_port

REDIRECT_URI = "http://127.0.0.1:9/callback"  # never followed: the tests read the code


class MockProvider:
    """``python -m oidc_provider_mock`` on a free loopback port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> MockProvider:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "oidc_provider_mock",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.issuer}/.well-known/openid-configuration").is_success:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("oidc-provider-mock did not start")
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        assert self.process is not None
        self.process.terminate()
        self.process.wait(timeout=10)

    def set_user(self, sub: str, claims: dict[str, Any]) -> None:
        response = httpx.put(f"{self.issuer}/users/{quote(sub, safe='')}", json=claims)
        assert response.status_code == 204, response.text

    def authorize(self, sub: str, *, client_id: str, params: dict[str, str] | None = None) -> str:
        """Sign ``sub`` in at the provider's form; the authorization code it redirects with."""
        query = {
            "client_id": client_id,
            "redirect_uri": REDIRECT_URI,
            "response_type": "code",
            "scope": "openid email profile",
        } | (params or {})
        response = httpx.post(f"{self.issuer}/oauth2/authorize", params=query, data={"sub": sub})
        assert response.status_code == 302, response.text
        return parse_qs(urlsplit(response.headers["location"]).query)["code"][0]

    def id_token(self, sub: str, *, client_id: str) -> str:
        code = self.authorize(sub, client_id=client_id)
        response = httpx.post(
            f"{self.issuer}/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "client_id": client_id,
                "client_secret": "any",
            },
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["id_token"]
        return token


def s256(verifier: str) -> str:
    """RFC 7636 S256, computed here rather than by the code under test."""
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@dataclass
class SigningKey:
    kid: str
    algorithm: str
    private: Any
    public_jwk: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        algorithm = jwt.get_algorithm_by_name(self.algorithm)
        jwk: dict[str, Any] = json.loads(algorithm.to_jwk(self.private.public_key()))
        self.public_jwk = jwk | {"kid": self.kid, "use": "sig", "alg": self.algorithm}

    @classmethod
    def rsa(cls, kid: str) -> SigningKey:
        return cls(kid, "RS256", rsa.generate_private_key(public_exponent=65537, key_size=2048))

    @classmethod
    def ec(cls, kid: str) -> SigningKey:
        return cls(kid, "ES256", ec.generate_private_key(ec.SECP256R1()))


class KeyServer:
    """Discovery + JWKS over real HTTP; ``published`` is what the JWKS lists right now."""

    def __init__(self) -> None:
        self.published: list[SigningKey] = []
        self.jwks_requests = 0
        # code -> (code_challenge, the ID token to answer with); one use each
        self.codes: dict[str, tuple[str, str]] = {}
        self.token_requests: list[dict[str, str]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    body = {
                        "issuer": owner.issuer,
                        "jwks_uri": f"{owner.issuer}/jwks",
                        "authorization_endpoint": f"{owner.issuer}/authorize",
                        "token_endpoint": f"{owner.issuer}/token",
                    }
                elif self.path == "/jwks":
                    owner.jwks_requests += 1
                    body = {"keys": [key.public_jwk for key in owner.published]}
                else:
                    self.send_error(404)
                    return
                self._json(200, body)

            def do_POST(self) -> None:
                if self.path != "/token":
                    self.send_error(404)
                    return
                length = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
                owner.token_requests.append(form)
                grant = owner.codes.pop(form.get("code", ""), None)
                verifier = form.get("code_verifier", "")
                if grant is None or form.get("grant_type") != "authorization_code":
                    self._json(400, {"error": "invalid_grant"})
                elif s256(verifier) != grant[0]:
                    self._json(400, {"error": "invalid_grant", "error_description": "PKCE"})
                else:
                    self._json(200, {"id_token": grant[1], "token_type": "Bearer"})

            def _json(self, status: int, body: dict[str, Any]) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> KeyServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def sign(
        self,
        key: SigningKey,
        *,
        audience: str,
        sub: str,
        claims: dict[str, Any] | None = None,
        issued: datetime | None = None,
        lifetime: timedelta = timedelta(minutes=10),
    ) -> str:
        now = issued or datetime.now(UTC)
        payload = {
            "iss": self.issuer,
            "aud": audience,
            "sub": sub,
            "iat": int(now.timestamp()),
            "exp": int((now + lifetime).timestamp()),
        } | (claims or {})
        return jwt.encode(payload, key.private, algorithm=key.algorithm, headers={"kid": key.kid})
