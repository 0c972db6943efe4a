"""Client side of Amazon Cognito's SRP-6a variant (USER_SRP_AUTH and remembered-device SRP).

Byte-for-byte compatible with amazon-cognito-identity-js / Amplify: 3072-bit RFC 3526 group,
g = 2, SHA-256, every integer hashed as its ``pad_hex`` form (even-length hex with a leading
zero byte when the top bit is set, i.e. a positive two's-complement encoding, as Java's
``BigInteger.toByteArray`` does on Cognito's side).

Everything here is pure CPU work: roughly 3 modular exponentiations per login. With gmpy2 that
is a few milliseconds; the pure-Python fallback is several times slower but gives identical
results. Callers in the event loop may want to run it in an executor.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import importlib
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import ModuleType

__all__ = [
    "POWMOD_BACKEND",
    "DeviceVerifier",
    "G",
    "K",
    "N",
    "SrpError",
    "SrpSecret",
    "calculate_u",
    "cognito_timestamp",
    "compute_hkdf",
    "device_password_claim_signature",
    "device_verifier_for",
    "new_client_secret",
    "new_device_verifier",
    "pad_hex",
    "password_authentication_key",
    "password_claim_signature",
    "secret_from_small_a",
    "srp_a_hex",
]

# RFC 3526 3072-bit MODP group, as in amazon-cognito-identity-js AuthenticationHelper.
N_HEX = (
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD1"
    "29024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245"
    "E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3D"
    "C2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D"
    "670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9"
    "DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64"
    "ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7"
    "ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6B"
    "F12FFA06D98A0864D87602733EC86A64521F2B18177B200C"
    "BBE117577A615D6C770988C0BAD946E208E24FA074E5AB31"
    "43DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF"
)
N = int(N_HEX, 16)
G = 2
_INFO_BITS = b"Caldera Derived Key\x01"  # HKDF-Expand info plus the first block counter
_SMALL_A_BYTES = 128  # what pycognito / the Go client draw for a
_DEVICE_PASSWORD_BYTES = 40  # amazon-cognito-identity-js generateHashDevice
_DEVICE_SALT_BYTES = 16

# Server values are a few hundred hex digits; the cap keeps a hostile or broken endpoint
# from making us parse and exponentiate megabyte-sized integers.
_MAX_HEX_CHARS = 2048
_HEX_RE = re.compile(r"[0-9a-fA-F]+")
# User pool ids look like "eu-west-1_AbC123"; the SRP "pool name" is the part after "_".
_POOL_ID_RE = re.compile(r"[0-9A-Za-z-]+_([0-9A-Za-z]+)")

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class SrpError(ValueError):
    """The server sent SRP parameters we must not (or cannot) compute with."""


def _load_gmpy2() -> ModuleType | None:
    # importlib keeps mypy away from gmpy2's missing stubs and makes gmpy2 optional ("fast" extra).
    try:
        return importlib.import_module("gmpy2")
    except ImportError:
        return None


_gmpy2 = _load_gmpy2()


def _powmod_python(base: int, exponent: int, modulus: int) -> int:
    return pow(base, exponent, modulus)


def _powmod_gmpy2(base: int, exponent: int, modulus: int) -> int:
    assert _gmpy2 is not None
    if exponent == 0:  # powmod_sec requires a positive exponent
        return 1 % modulus
    # Every exponent here (a, x, a + u*x) is secret, so use GMP's side-channel-hardened
    # variant; N is odd as it requires.
    return int(_gmpy2.powmod_sec(base % modulus, exponent, modulus))


_powmod: Callable[[int, int, int], int]
if _gmpy2 is not None:
    _powmod = _powmod_gmpy2
    POWMOD_BACKEND = "gmpy2"
else:
    _powmod = _powmod_python
    POWMOD_BACKEND = "python"


def pad_hex(value: int) -> str:
    """Lower-case hex of a non-negative int as Cognito hashes it (Amplify's ``padHex``)."""
    if value < 0:
        raise ValueError("pad_hex is only defined here for non-negative integers")
    text = f"{value:x}"
    if len(text) % 2:
        return "0" + text
    if text[0] in "89abcdef":
        return "00" + text
    return text


def _hex_hash(hex_text: str) -> str:
    return hashlib.sha256(bytes.fromhex(hex_text)).hexdigest()


K = int(_hex_hash(pad_hex(N) + pad_hex(G)), 16)


@dataclass(frozen=True)
class SrpSecret:
    """The client's ephemeral key pair for one login. ``small_a`` must never leave the process."""

    small_a: int = field(repr=False)
    large_a: int = field(repr=False)

    def __repr__(self) -> str:
        return "SrpSecret(<redacted>)"

    def __post_init__(self) -> None:
        if not 0 < self.small_a < N:
            raise ValueError("small_a out of range")
        if not 1 < self.large_a < N:
            raise ValueError("large_a out of range")


def secret_from_small_a(small_a: int) -> SrpSecret:
    """Build the key pair for a chosen ``a`` (known-answer tests, or a replayed login)."""
    small_a %= N
    if small_a == 0:
        raise ValueError("small_a must not be a multiple of N")
    large_a = _powmod(G, small_a, N)
    # A is never 0 mod N for prime N and g = 2; kept as the protocol's mandated safety check.
    if large_a % N == 0:
        raise ValueError("A must not be divisible by N")
    return SrpSecret(small_a=small_a, large_a=large_a)


def new_client_secret() -> SrpSecret:
    """Fresh random ``a`` (128 random bytes, like pycognito) and ``A = g^a mod N``."""
    while True:
        small_a = int.from_bytes(secrets.token_bytes(_SMALL_A_BYTES), "big") % N
        try:
            return secret_from_small_a(small_a)
        except ValueError:  # a == 0 or A == 0 mod N: astronomically unlikely, just redraw
            continue


def srp_a_hex(secret: SrpSecret) -> str:
    """``AuthParameters["SRP_A"]``: unpadded lower-case hex, as the reference clients send it."""
    return f"{secret.large_a:x}"


def cognito_timestamp(now: datetime | None = None) -> str:
    """Cognito's TIMESTAMP, e.g. ``Tue Jul 1 11:01:00 UTC 2018`` (day not zero-padded).

    Built by hand rather than with strftime so a non-English locale cannot change the names.
    Naive datetimes are rejected: guessing their zone would produce signatures Cognito refuses.
    """
    if now is None:
        now = datetime.now(UTC)
    elif now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("cognito_timestamp needs an aware datetime")
    now = now.astimezone(UTC)
    return (
        f"{_WEEKDAYS[now.weekday()]} {_MONTHS[now.month - 1]} {now.day} "
        f"{now.hour:02d}:{now.minute:02d}:{now.second:02d} UTC {now.year}"
    )


def calculate_u(large_a: int, large_b: int) -> int:
    """``u = H(pad(A) | pad(B))``."""
    return int(_hex_hash(pad_hex(large_a) + pad_hex(large_b)), 16)


def compute_hkdf(ikm: bytes, salt: bytes) -> bytes:
    """HKDF-SHA256 with info "Caldera Derived Key", first 16 bytes of output."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    return hmac.new(prk, _INFO_BITS, hashlib.sha256).digest()[:16]


def _parse_hex(name: str, text: str) -> int:
    # int(text, 16) alone would also accept "0x", "_", signs and whitespace.
    if not isinstance(text, str) or not _HEX_RE.fullmatch(text):
        raise SrpError(f"{name} is not a hex string")
    if len(text) > _MAX_HEX_CHARS:
        raise SrpError(f"{name} is implausibly long ({len(text)} hex digits)")
    return int(text, 16)


def _parse_b64(name: str, text: str) -> bytes:
    if not isinstance(text, str):
        raise SrpError(f"{name} is not a string")
    try:
        # Lenient like the reference clients (amazon-cognito-identity-js, pycognito): characters
        # outside the alphabet are skipped. Emulators such as moto send a UUID here; the
        # server checks the signature anyway, so leniency costs nothing.
        raw = base64.b64decode(text.encode("ascii"), validate=False)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise SrpError(f"{name} is not valid base64") from exc
    if not raw:
        raise SrpError(f"{name} is empty")
    return raw


def _pool_name(pool_id: str) -> str:
    match = _POOL_ID_RE.fullmatch(pool_id) if isinstance(pool_id, str) else None
    if match is None:
        raise SrpError("user pool id must look like '<region>_<pool name>'")
    return match.group(1)


def _x_value(salt: int, identity: str, password: str) -> int:
    """``x = H(pad(salt) | H(identity ":" password))``; identity = poolname+user or group+key."""
    inner = hashlib.sha256(f"{identity}:{password}".encode()).hexdigest()
    return int(_hex_hash(pad_hex(salt) + inner), 16)


def _authentication_key(
    *, identity: str, password: str, secret: SrpSecret, srp_b_hex: str, salt_hex: str
) -> bytes:
    large_b = _parse_hex("SRP_B", srp_b_hex)
    # Salt goes through an int, as amazon-cognito-identity-js does (new BigInteger(SALT, 16)),
    # so leading zero digits in the server's hex do not change x.
    salt = _parse_hex("SALT", salt_hex)
    if large_b % N == 0:
        raise SrpError("server sent an invalid SRP_B (B mod N == 0)")
    u = calculate_u(secret.large_a, large_b)
    if u == 0:
        raise SrpError("SRP u value is zero")
    x = _x_value(salt, identity, password)
    base = (large_b - K * _powmod(G, x, N)) % N
    s = _powmod(base, secret.small_a + u * x, N)
    return compute_hkdf(bytes.fromhex(pad_hex(s)), bytes.fromhex(pad_hex(u)))


def _claim_signature(
    who: tuple[str, str],
    password: str,
    secret: SrpSecret,
    srp_b_hex: str,
    salt_hex: str,
    secret_block_b64: str,
    timestamp: str,
) -> str:
    """The claim signature of both verifier challenges. ``who`` is (realm, name): (pool name,
    USER_ID_FOR_SRP) for a user, (device group key, device key) for a device. The SRP
    identity is realm + name; the signed message is realm | name | secret block | timestamp."""
    realm, name = who
    secret_block = _parse_b64("SECRET_BLOCK", secret_block_b64)
    key = _authentication_key(
        identity=realm + name,
        password=password,
        secret=secret,
        srp_b_hex=srp_b_hex,
        salt_hex=salt_hex,
    )
    message = realm.encode() + name.encode() + secret_block + timestamp.encode()
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode("ascii")


def password_authentication_key(
    *,
    pool_id: str,
    user_id_for_srp: str,
    password: str,
    secret: SrpSecret,
    srp_b_hex: str,
    salt_hex: str,
) -> bytes:
    """The 16-byte HKDF key both sides derive from S; the HMAC key of the claim signature."""
    return _authentication_key(
        identity=_pool_name(pool_id) + user_id_for_srp,
        password=password,
        secret=secret,
        srp_b_hex=srp_b_hex,
        salt_hex=salt_hex,
    )


def password_claim_signature(
    *,
    pool_id: str,
    user_id_for_srp: str,
    password: str,
    secret: SrpSecret,
    srp_b_hex: str,
    salt_hex: str,
    secret_block_b64: str,
    timestamp: str,
) -> str:
    """``PASSWORD_CLAIM_SIGNATURE`` for the PASSWORD_VERIFIER challenge."""
    realm = _pool_name(pool_id)
    return _claim_signature(
        (realm, user_id_for_srp), password, secret, srp_b_hex, salt_hex, secret_block_b64, timestamp
    )


def device_password_claim_signature(
    *,
    device_group_key: str,
    device_key: str,
    device_password: str,
    secret: SrpSecret,
    srp_b_hex: str,
    salt_hex: str,
    secret_block_b64: str,
    timestamp: str,
) -> str:
    """``PASSWORD_CLAIM_SIGNATURE`` for DEVICE_PASSWORD_VERIFIER (after DEVICE_SRP_AUTH).

    Same maths as the user flow with the device group key in place of the pool name and the
    device key in place of the user id.
    """
    who = (device_group_key, device_key)
    return _claim_signature(
        who, device_password, secret, srp_b_hex, salt_hex, secret_block_b64, timestamp
    )


@dataclass(frozen=True)
class DeviceVerifier:
    """ConfirmDevice's ``DeviceSecretVerifierConfig`` plus the password the client must keep."""

    device_password: str = field(repr=False)
    salt_b64: str
    verifier_b64: str = field(repr=False)

    def secret_verifier_config(self) -> dict[str, str]:
        """The ``DeviceSecretVerifierConfig`` argument of ConfirmDevice."""
        return {"PasswordVerifier": self.verifier_b64, "Salt": self.salt_b64}


def device_verifier_for(
    device_group_key: str, device_key: str, device_password: str, salt: bytes
) -> DeviceVerifier:
    """Deterministic core of :func:`new_device_verifier` (``v = g^x mod N``)."""
    if not salt:
        raise ValueError("salt must not be empty")
    # Through an int like Amplify: leading zero bytes vanish from the stored salt, which keeps
    # it identical to what the device flow later rebuilds from Cognito's SALT hex.
    salt_int = int.from_bytes(salt, "big")
    salt_hex = pad_hex(salt_int)
    x = _x_value(salt_int, device_group_key + device_key, device_password)
    verifier = _powmod(G, x, N)
    return DeviceVerifier(
        device_password=device_password,
        salt_b64=base64.b64encode(bytes.fromhex(salt_hex)).decode("ascii"),
        verifier_b64=base64.b64encode(bytes.fromhex(pad_hex(verifier))).decode("ascii"),
    )


def new_device_verifier(device_group_key: str, device_key: str) -> DeviceVerifier:
    """Random device password (base64 of 40 bytes) and its verifier, for ConfirmDevice."""
    device_password = base64.b64encode(secrets.token_bytes(_DEVICE_PASSWORD_BYTES)).decode("ascii")
    return device_verifier_for(
        device_group_key, device_key, device_password, secrets.token_bytes(_DEVICE_SALT_BYTES)
    )
