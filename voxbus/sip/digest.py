"""Digest authentication of incoming calls (RFC 3261 section 22, the Digest scheme of RFC 2617
with MD5 and ``qop=auth``), for PBXs and SIP trunks that present credentials.

With ``sip.auth.required``, an INVITE without credentials is challenged (401 with a
``WWW-Authenticate`` header); one whose credentials do not check out is refused (403), which
counts towards blocking its source. The check is stateless: a nonce carries its own proof (the
time it was made and an HMAC of that time under a key shared by the gateways of a machine), so a
challenge costs no memory and any gateway shard can check the answer to another's challenge. A
nonce is good for ``sip.auth.nonce_s``; a replay within that window is not detected (no nonce
counts are kept), which the short window and the source checks bound.

Passwords come from an environment variable or a file (``voxbus.secrets``), never the TOML.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from pathlib import Path

from pydantic import BaseModel, Field, model_validator

from voxbus.secrets import read_secret
from voxbus.sip.invite_checks import Refusal, parse_head

CHALLENGE = "Unauthorized"
_PARAM = re.compile(r'(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


class SipTrunk(BaseModel):
    """Credentials a PBX or trunk presents: its user name, and where its password is."""

    user: str = Field(pattern=r"^[A-Za-z0-9_.+-]{1,64}$")
    password_env: str | None = Field(default=None, description="environment variable holding the password")
    password_file: Path | None = Field(default=None, description="file holding the password (0600)")

    @model_validator(mode="after")
    def _password_somewhere(self) -> SipTrunk:
        if not self.password_env and self.password_file is None:
            raise ValueError(f"trunk user {self.user!r}: set password_env or password_file")
        return self


class SipAuthSettings(BaseModel):
    required: bool = Field(default=False, description="every incoming INVITE must authenticate (digest)")
    realm: str = Field(default="voxbus", pattern=r'^[^"\\]{1,64}$')
    nonce_s: float = Field(default=300.0, gt=0, description="how long a challenge's nonce is good")
    trunks: dict[str, SipTrunk] = Field(default_factory=dict, description="who may call in, by name")

    @model_validator(mode="after")
    def _someone_may_call(self) -> SipAuthSettings:
        if self.required and not self.trunks:
            raise ValueError("sip.auth.required needs at least one [sip.auth.trunks.<name>]")
        return self


def nonce_key(path: Path) -> bytes:
    """The key the machine's gateways make and check nonces with (made once, 0600)."""
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_bytes(secrets.token_bytes(32))
        path.chmod(0o600)
    return path.read_bytes()


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - RFC 2617's digest, not for storage


def digest_params(header: str) -> dict[str, str]:
    """The parameters of a ``Digest ...`` credentials header (names lower-case)."""
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "digest":
        return {}
    return {m[1].lower(): m[2] if m[2] is not None else m[3] for m in _PARAM.finditer(rest)}


class DigestGuard:
    def __init__(self, settings: SipAuthSettings, key: bytes) -> None:
        self.realm, self.nonce_s, self.key = settings.realm, settings.nonce_s, key
        self.ha1 = {
            trunk.user: _md5(f"{trunk.user}:{settings.realm}:{self._password(name, trunk)}")
            for name, trunk in settings.trunks.items()
        }  # only the HA1 of each password is kept

    @staticmethod
    def _password(name: str, trunk: SipTrunk) -> str:
        return read_secret(f"sip.auth.trunks.{name}", trunk.password_env, trunk.password_file)

    def nonce(self, now: float) -> str:
        made = str(int(now))
        return f"{made}.{hmac.new(self.key, made.encode(), hashlib.sha256).hexdigest()[:32]}"

    def _fresh(self, nonce: str, now: float) -> bool:
        made, _, proof = nonce.partition(".")
        if not made.isdigit():
            return False
        expected = hmac.new(self.key, made.encode(), hashlib.sha256).hexdigest()[:32]
        return hmac.compare_digest(proof, expected) and 0 <= now - int(made) <= self.nonce_s

    def challenge(self, now: float, stale: bool = False) -> Refusal:
        value = f'Digest realm="{self.realm}", nonce="{self.nonce(now)}", algorithm=MD5, qop="auth"'
        return Refusal(401, CHALLENGE, {"WWW-Authenticate": value + (", stale=true" if stale else "")})

    def refusal(self, invite: str, now: float) -> Refusal | None:
        """None when the INVITE's credentials check out; else the challenge or the refusal."""
        request_line, headers = parse_head(invite.partition("\r\n\r\n")[0])
        method = request_line.split(" ", 1)[0].upper()
        offered = [v for name, v in headers if name == "authorization"]
        params = next((p for p in map(digest_params, offered) if p.get("realm") == self.realm), None)
        if params is None:
            return self.challenge(now)
        ha1 = self.ha1.get(params.get("username", ""))
        if ha1 is None or params.get("algorithm", "MD5").upper() != "MD5":
            return Refusal(403, "Forbidden: unknown user or algorithm")
        if not self._fresh(params.get("nonce", ""), now):
            return self.challenge(now, stale=True)  # a good client answers again, with the new nonce
        ha2 = _md5(f"{method}:{params.get('uri', '')}")
        if params.get("qop") == "auth":
            parts = [ha1, params["nonce"], params.get("nc", ""), params.get("cnonce", ""), "auth", ha2]
        else:
            parts = [ha1, params["nonce"], ha2]
        if not hmac.compare_digest(_md5(":".join(parts)), params.get("response", "").lower()):
            return Refusal(403, "Forbidden: wrong credentials")
        return None
