"""OIDC ID tokens as Cloud Tasks attaches them, signed by a key of our own and verifiable through our JWKS.

The key is generated once per data dir (kept there as PEM, so tokens stay verifiable across restarts) or once
per process without one.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import crypt, jwt

ISSUER = "https://accounts.google.com"
TOKEN_LIFETIME = 3600
KEY_FILE = "oidc-signing-key.pem"


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _load_or_create_key(data_dir: str | None) -> rsa.RSAPrivateKey:
    path = Path(data_dir, KEY_FILE) if data_dir else None
    if path and path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if path:
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        # Write then rename, so a kill during the write never leaves half a key that the next start would reject.
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(pem)
        os.chmod(tmp, 0o600)
        tmp.replace(path)
    return key


class TokenMinter:
    """Mints RS256 ID tokens and publishes the matching JWKS. Tokens are cached until 5 minutes before expiry."""

    def __init__(self, data_dir: str | None = None):
        key = _load_or_create_key(data_dir)
        public = key.public_key()
        der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.kid = hashlib.sha256(der).hexdigest()[:20]
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        self._signer = crypt.RSASigner.from_string(pem, key_id=self.kid)
        numbers = public.public_numbers()
        self.jwks = {"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": self.kid,
                               "n": _b64url_uint(numbers.n), "e": _b64url_uint(numbers.e)}]}
        self._cache: dict[tuple[str, str], tuple[float, str]] = {}
        self._lock = threading.Lock()

    def token(self, service_account: str, audience: str) -> str:
        now = time.time()
        with self._lock:
            cached = self._cache.get((service_account, audience))
            if cached and cached[0] - 300 > now:
                return cached[1]
        iat = int(now)
        payload = {
            "iss": ISSUER,
            "aud": audience,
            "azp": service_account,
            "sub": hashlib.sha256(service_account.encode()).hexdigest()[:21],
            "email": service_account,
            "email_verified": True,
            "iat": iat,
            "exp": iat + TOKEN_LIFETIME,
        }
        token = jwt.encode(self._signer, payload).decode()
        with self._lock:
            self._cache[(service_account, audience)] = (iat + TOKEN_LIFETIME, token)
        return token
