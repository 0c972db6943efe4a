"""Token verification: every check rejects the token crafted against it, and the JWKS cache
fetches only when it must. Keys are generated here; the JWKS is served on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import math
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from proxy.cognito import tokens
from proxy.cognito.tokens import (
    AlgorithmNotAllowed,
    AudienceMismatch,
    Expired,
    InvalidSignature,
    IssuerMismatch,
    JwksCache,
    JwksUnavailable,
    KeyNotUsableForSignature,
    MalformedToken,
    MissingClaim,
    NotYetValid,
    TokenError,
    TokenUseMismatch,
    TokenVerifier,
    UnknownKeyId,
    UnsupportedCritical,
)

NOW = 1_700_000_000.0
LEEWAY = 30.0
ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123"
CLIENT_ID = "4example0clientid0abcdefgh"
OTHER_CLIENT_ID = "7another0clientid0zyxwvuts"

KEY_A = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KEY_B = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ATTACKER = rsa.generate_private_key(public_exponent=65537, key_size=2048)
SHORT = rsa.generate_private_key(public_exponent=65537, key_size=1024)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(obj: Any) -> str:
    return b64url(json.dumps(obj).encode())


def jwk_of(key: rsa.RSAPrivateKey, kid: str, **extra: Any) -> dict[str, Any]:
    public = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    public.pop("key_ops")
    return {**public, "kid": kid, "use": "sig", "alg": "RS256", **extra}


def rs256(key: rsa.RSAPrivateKey) -> Callable[[bytes], bytes]:
    return lambda msg: key.sign(msg, padding.PKCS1v15(), hashes.SHA256())


def forge(header: dict[str, Any], claims: Any, sign: Callable[[bytes], bytes]) -> str:
    """Compact JWS with exactly the header and claims given, signed by ``sign``."""
    signing_input = f"{b64json(header)}.{b64json(claims)}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


def id_claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "token_use": "id",
        "auth_time": int(NOW) - 60,
        "iat": int(NOW) - 60,
        "exp": int(NOW) + 3600,
        "email": "someone@example.com",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not DROP}


def access_claims(**overrides: Any) -> dict[str, Any]:
    claims = id_claims(token_use="access", aud=DROP, client_id=CLIENT_ID, scope="aws.cognito")
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not DROP}


DROP: Any = object()


def token(
    claims: dict[str, Any] | None = None,
    *,
    key: rsa.RSAPrivateKey = KEY_A,
    kid: str = "kid-a",
    **header: Any,
) -> str:
    return forge({"kid": kid, "alg": "RS256", **header}, claims or id_claims(), rs256(key))


# --------------------------------------------------------------------------------------------
# Fixtures: a JWKS server on 127.0.0.1 whose answers the test controls, and frozen clocks.
# --------------------------------------------------------------------------------------------


@dataclass
class JwksState:
    keys: list[dict[str, Any]] = field(default_factory=lambda: [jwk_of(KEY_A, "kid-a")])
    status: int = 200
    body: bytes | None = None  # raw body overriding ``keys``
    delay: float = 0.0
    chunked: bool = False  # stream without Content-Length
    hits: Counter[str] = field(default_factory=Counter)


STATE = web.AppKey("state", JwksState)


async def _jwks(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    state.hits["/jwks"] += 1
    if state.delay:
        await asyncio.sleep(state.delay)
    if state.status != 200:
        return web.Response(status=state.status, text="nope")
    body = state.body if state.body is not None else json.dumps({"keys": state.keys}).encode()
    if not state.chunked:
        return web.Response(body=body, content_type="application/json")
    resp = web.StreamResponse(headers={"Content-Type": "application/json"})
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    for i in range(0, len(body), 256 * 1024):
        await resp.write(body[i : i + 256 * 1024])
    await resp.write_eof()
    return resp


async def _redirect(request: web.Request) -> web.Response:
    request.app[STATE].hits["/redirect"] += 1
    raise web.HTTPFound("/jwks")


async def _evil(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.hits["/evil"] += 1
    return web.json_response({"keys": [jwk_of(ATTACKER, "kid-a")]})


@dataclass
class Jwks:
    server: TestServer
    state: JwksState

    def url(self, path: str = "/jwks") -> str:
        return str(self.server.make_url(path))


@pytest.fixture
async def jwks(aiohttp_server: Any) -> Jwks:
    app = web.Application()
    app[STATE] = JwksState()
    app.router.add_get("/jwks", _jwks)
    app.router.add_get("/redirect", _redirect)
    app.router.add_get("/evil", _evil)
    return Jwks(await aiohttp_server(app), app[STATE])


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(tokens, "_monotonic", fake)
    monkeypatch.setattr(tokens, "_wall_clock", lambda: NOW)
    return fake


@pytest.fixture
async def cache(jwks: Jwks, clock: FakeClock) -> AsyncIterator[JwksCache]:
    c = JwksCache(jwks.url(), min_refetch_interval=30.0)
    await c.load()
    yield c
    await c.close()


@pytest.fixture
def verifier(cache: JwksCache) -> TokenVerifier:
    return TokenVerifier(issuer=ISSUER, client_ids=[CLIENT_ID], jwks=cache, leeway=LEEWAY)


# --------------------------------------------------------------------------------------------
# Happy paths
# --------------------------------------------------------------------------------------------


async def test_valid_id_token(verifier: TokenVerifier) -> None:
    claims = await verifier.verify(token(), token_use="id")
    assert claims == id_claims()


async def test_valid_id_token_with_aud_list(verifier: TokenVerifier) -> None:
    claims = id_claims(aud=[OTHER_CLIENT_ID, CLIENT_ID])
    assert await verifier.verify(token(claims), token_use="id") == claims


async def test_valid_access_token(verifier: TokenVerifier) -> None:
    claims = await verifier.verify(token(access_claims()), token_use="access")
    assert claims["client_id"] == CLIENT_ID and claims["token_use"] == "access"


async def test_any_configured_client_accepted(cache: JwksCache) -> None:
    v = TokenVerifier(issuer=ISSUER, client_ids={CLIENT_ID, OTHER_CLIENT_ID}, jwks=cache)
    await v.verify(token(id_claims(aud=OTHER_CLIENT_ID)), token_use="id")
    await v.verify(token(access_claims(client_id=OTHER_CLIENT_ID)), token_use="access")


# --------------------------------------------------------------------------------------------
# Header checks
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "!!!.e30.sig",
        f"{b64url(b'not json')}.e30.sig",
        f"{b64json([1, 2])}.e30.sig",
        f"{b64json('RS256')}.e30.sig",
        f"{b64json({'alg': 'RS256', 'kid': 'kid-a'})}=.e30.sig",  # padding not base64url
        "x" * (tokens.MAX_TOKEN_LENGTH + 1),
    ],
)
async def test_malformed_header(verifier: TokenVerifier, bad: str) -> None:
    with pytest.raises(MalformedToken):
        await verifier.verify(bad, token_use="id")


async def test_non_string_token(verifier: TokenVerifier) -> None:
    with pytest.raises(MalformedToken):
        await verifier.verify(b"a.b.c", token_use="id")  # type: ignore[arg-type]


async def test_alg_none(verifier: TokenVerifier) -> None:
    for alg in ("none", "None", "NONE", "", None):
        unsigned = f"{b64json({'alg': alg, 'kid': 'kid-a'})}.{b64json(id_claims())}."
        with pytest.raises(AlgorithmNotAllowed):
            await verifier.verify(unsigned, token_use="id")
    no_alg = forge({"kid": "kid-a"}, id_claims(), rs256(KEY_A))
    with pytest.raises(AlgorithmNotAllowed):
        await verifier.verify(no_alg, token_use="id")


async def test_hs256_with_public_key_as_secret(verifier: TokenVerifier) -> None:
    """Key confusion: HMAC keyed with the very PEM an RS256 verifier holds."""
    pem = KEY_A.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for secret in (pem, pem.strip()):
        forged = forge(
            {"alg": "HS256", "kid": "kid-a"},
            id_claims(),
            lambda msg, s=secret: hmac.new(s, msg, hashlib.sha256).digest(),  # type: ignore[misc]
        )
        with pytest.raises(AlgorithmNotAllowed):
            await verifier.verify(forged, token_use="id")


def test_alg_check_alone() -> None:
    """check_alg itself, not only the PyJWT allow-list behind it, refuses every other alg."""
    tokens.check_alg({"alg": "RS256"})
    for alg in ("none", "HS256", "ES256", "RS512", "PS256", "rs256", None, ["RS256"]):
        with pytest.raises(AlgorithmNotAllowed):
            tokens.check_alg({"alg": alg})
    with pytest.raises(AlgorithmNotAllowed):
        tokens.check_alg({})


async def test_other_asymmetric_algs(verifier: TokenVerifier) -> None:
    es256 = ECAlgorithm(ECAlgorithm.SHA256)
    forged = forge({"alg": "ES256", "kid": "kid-a"}, id_claims(), lambda m: es256.sign(m, EC_KEY))
    with pytest.raises(AlgorithmNotAllowed):
        await verifier.verify(forged, token_use="id")
    for alg in ("RS512", "PS256", "rs256", "RS256 "):
        with pytest.raises(AlgorithmNotAllowed):
            await verifier.verify(token(alg=alg), token_use="id")


@pytest.mark.parametrize("crit", [["exp"], ["b64"], [], "b64"])
async def test_crit_rejected(verifier: TokenVerifier, crit: Any) -> None:
    with pytest.raises(UnsupportedCritical):
        await verifier.verify(token(crit=crit, b64=True), token_use="id")


@pytest.mark.parametrize("kid", [DROP, "", 7, None, ["kid-a"], "k" * 300])
async def test_kid_missing_or_invalid(verifier: TokenVerifier, kid: Any) -> None:
    header = {"alg": "RS256"} if kid is DROP else {"alg": "RS256", "kid": kid}
    with pytest.raises(MalformedToken):
        await verifier.verify(forge(header, id_claims(), rs256(KEY_A)), token_use="id")


async def test_unknown_kid(verifier: TokenVerifier, jwks: Jwks) -> None:
    with pytest.raises(UnknownKeyId):
        await verifier.verify(token(kid="kid-nope"), token_use="id")
    assert jwks.state.hits["/jwks"] == 1  # only the load: the refetch is rate-limited


async def test_embedded_key_headers_are_ignored(verifier: TokenVerifier, jwks: Jwks) -> None:
    """jwk / jku / x5u / x5c never supply a key: an attacker-signed token stays rejected, and
    the URLs it names are never fetched."""
    attacker_jwk = jwk_of(ATTACKER, "kid-a")
    embedded: dict[str, Any] = {
        "jwk": attacker_jwk,
        "jku": jwks.url("/evil"),
        "x5u": jwks.url("/evil"),
        "x5c": ["MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"],
    }
    with pytest.raises(InvalidSignature):
        await verifier.verify(token(key=ATTACKER, **embedded), token_use="id")
    with pytest.raises(UnknownKeyId):
        await verifier.verify(token(key=ATTACKER, kid="evil", **embedded), token_use="id")
    # The same headers on a genuine token change nothing: ignored, not merely rejected.
    assert await verifier.verify(token(**embedded), token_use="id") == id_claims()
    assert jwks.state.hits["/evil"] == 0


# --------------------------------------------------------------------------------------------
# Key usability
# --------------------------------------------------------------------------------------------


async def test_unusable_keys(jwks: Jwks, clock: FakeClock) -> None:
    ec_jwk = {**ECAlgorithm.to_jwk(EC_KEY.public_key(), as_dict=True), "kid": "kid-ec"}
    jwks.state.keys = [
        jwk_of(KEY_A, "kid-a"),
        jwk_of(KEY_B, "kid-enc", use="enc"),
        {k: v for k, v in jwk_of(KEY_B, "kid-nouse").items() if k != "use"},
        jwk_of(KEY_B, "kid-es", alg="ES256"),
        {**ec_jwk, "use": "sig"},
        jwk_of(SHORT, "kid-short"),
        {**RSAAlgorithm.to_jwk(KEY_B, as_dict=True), "kid": "kid-priv", "use": "sig"},
        {**jwk_of(KEY_B, "kid-bad-n"), "n": "!!"},
        {**jwk_of(KEY_B, "kid-no-n"), "n": None},
        jwk_of(KEY_B, "kid-dup"),
        jwk_of(KEY_B, "kid-dup"),
    ]
    cache = JwksCache(jwks.url())
    await cache.load()
    try:
        v = TokenVerifier(issuer=ISSUER, client_ids=[CLIENT_ID], jwks=cache)
        for kid, signer in [
            ("kid-enc", KEY_B),
            ("kid-nouse", KEY_B),
            ("kid-es", KEY_B),
            ("kid-ec", KEY_B),
            ("kid-short", SHORT),
            ("kid-priv", KEY_B),
            ("kid-bad-n", KEY_B),
            ("kid-no-n", KEY_B),
            ("kid-dup", KEY_B),
        ]:
            with pytest.raises(KeyNotUsableForSignature):
                await v.verify(token(key=signer, kid=kid), token_use="id")
            with pytest.raises(KeyNotUsableForSignature):
                await cache.get_key(kid)
        assert await v.verify(token(), token_use="id")  # the good key beside them still works
        assert jwks.state.hits["/jwks"] == 1
    finally:
        await cache.close()


async def test_jwk_without_alg_is_usable(jwks: Jwks, clock: FakeClock) -> None:
    jwks.state.keys = [{k: v for k, v in jwk_of(KEY_A, "kid-a").items() if k != "alg"}]
    cache = JwksCache(jwks.url())
    await cache.load()
    try:
        v = TokenVerifier(issuer=ISSUER, client_ids=[CLIENT_ID], jwks=cache)
        assert await v.verify(token(), token_use="id")
    finally:
        await cache.close()


# --------------------------------------------------------------------------------------------
# Signature
# --------------------------------------------------------------------------------------------


async def test_signature_by_other_key(verifier: TokenVerifier) -> None:
    with pytest.raises(InvalidSignature):
        await verifier.verify(token(key=ATTACKER), token_use="id")


async def test_tampered_claims(verifier: TokenVerifier) -> None:
    header, _, sig = token().split(".")
    tampered = f"{header}.{b64json(id_claims(email='admin@example.com'))}.{sig}"
    with pytest.raises(InvalidSignature):
        await verifier.verify(tampered, token_use="id")


async def test_tampered_header(verifier: TokenVerifier) -> None:
    _, claims, sig = token().split(".")
    header = b64json({"kid": "kid-a", "alg": "RS256", "x": 1})
    with pytest.raises(InvalidSignature):
        await verifier.verify(f"{header}.{claims}.{sig}", token_use="id")


async def test_signed_payload_not_an_object(verifier: TokenVerifier) -> None:
    with pytest.raises(MalformedToken):
        await verifier.verify(token([1, 2, 3]), token_use="id")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Claims
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "iss",
    [
        ISSUER + "evil",
        ISSUER + "/",
        ISSUER[:-1],
        ISSUER.rstrip("3"),
        ISSUER.upper(),
        ISSUER.replace("https://", "http://"),
        " " + ISSUER,
        [ISSUER],
        None,
    ],
)
async def test_issuer_must_match_exactly(verifier: TokenVerifier, iss: Any) -> None:
    with pytest.raises(IssuerMismatch):
        await verifier.verify(token(id_claims(iss=iss)), token_use="id")


async def test_a_pool_moving_issuers_accepts_both_and_nothing_else(cache: JwksCache) -> None:
    moved = ISSUER.replace("https://cognito-idp.", "https://issuer-cognito-idp.")
    assert moved != ISSUER
    both = TokenVerifier(issuer=[ISSUER, moved], client_ids=[CLIENT_ID], jwks=cache)
    for iss in (ISSUER, moved):
        assert (await both.verify(token(id_claims(iss=iss)), token_use="id"))["iss"] == iss
    for iss in (moved + "/", [ISSUER, moved], ISSUER + moved):
        with pytest.raises(IssuerMismatch):
            await both.verify(token(id_claims(iss=iss)), token_use="id")
    with pytest.raises(ValueError, match="issuer"):
        TokenVerifier(issuer=[], client_ids=[CLIENT_ID], jwks=cache)


async def test_issuer_missing(verifier: TokenVerifier) -> None:
    with pytest.raises(MissingClaim):
        await verifier.verify(token(id_claims(iss=DROP)), token_use="id")


async def test_token_use_mismatch(verifier: TokenVerifier) -> None:
    with pytest.raises(TokenUseMismatch):
        await verifier.verify(token(id_claims()), token_use="access")
    with pytest.raises(TokenUseMismatch):
        await verifier.verify(token(access_claims()), token_use="id")
    with pytest.raises(TokenUseMismatch):
        await verifier.verify(token(id_claims(token_use=["id"])), token_use="id")
    with pytest.raises(MissingClaim):
        await verifier.verify(token(id_claims(token_use=DROP)), token_use="id")


@pytest.mark.parametrize(
    "aud", [OTHER_CLIENT_ID, CLIENT_ID[:-1], CLIENT_ID + "x", "", [], [OTHER_CLIENT_ID], 5, None]
)
async def test_id_token_foreign_audience(verifier: TokenVerifier, aud: Any) -> None:
    with pytest.raises(AudienceMismatch):
        await verifier.verify(token(id_claims(aud=aud)), token_use="id")


@pytest.mark.parametrize("client_id", [OTHER_CLIENT_ID, CLIENT_ID[1:], [CLIENT_ID], None])
async def test_access_token_foreign_client(verifier: TokenVerifier, client_id: Any) -> None:
    with pytest.raises(AudienceMismatch):
        await verifier.verify(token(access_claims(client_id=client_id)), token_use="access")


async def test_audience_missing(verifier: TokenVerifier) -> None:
    with pytest.raises(MissingClaim):
        await verifier.verify(token(id_claims(aud=DROP)), token_use="id")
    # An access token is judged by client_id; an aud naming our client does not stand in.
    with pytest.raises(MissingClaim):
        claims = access_claims(client_id=DROP, aud=CLIENT_ID)
        await verifier.verify(token(claims), token_use="access")


async def test_expiry_and_leeway(verifier: TokenVerifier) -> None:
    for exp in (NOW - LEEWAY - 1, NOW - LEEWAY, NOW - 3600):
        with pytest.raises(Expired):
            await verifier.verify(token(id_claims(exp=exp)), token_use="id")
    for exp in (NOW - LEEWAY + 1, NOW - 1, NOW + 1):
        assert await verifier.verify(token(id_claims(exp=exp)), token_use="id")


async def test_not_before_and_issued_at(verifier: TokenVerifier) -> None:
    for claim in ("nbf", "iat"):
        with pytest.raises(NotYetValid):
            await verifier.verify(token(id_claims(**{claim: NOW + LEEWAY + 1})), token_use="id")
        ok = id_claims(**{claim: NOW + LEEWAY})
        assert await verifier.verify(token(ok), token_use="id") == ok


async def test_missing_exp_or_iat(verifier: TokenVerifier) -> None:
    for claim in ("exp", "iat"):
        with pytest.raises(MissingClaim):
            await verifier.verify(token(id_claims(**{claim: DROP})), token_use="id")


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
@pytest.mark.parametrize("value", [str(int(NOW) + 60), True, None, [1], math.inf])
async def test_dates_must_be_numbers(verifier: TokenVerifier, claim: str, value: Any) -> None:
    with pytest.raises(MalformedToken):
        await verifier.verify(token(id_claims(**{claim: value})), token_use="id")


async def test_zero_leeway(cache: JwksCache) -> None:
    v = TokenVerifier(issuer=ISSUER, client_ids=[CLIENT_ID], jwks=cache, leeway=0)
    with pytest.raises(Expired):
        await v.verify(token(id_claims(exp=NOW)), token_use="id")
    with pytest.raises(NotYetValid):
        await v.verify(token(id_claims(iat=NOW + 1)), token_use="id")


def test_constructor_validation(cache: JwksCache) -> None:
    for leeway in (-1, 60.5, 61, math.nan):
        with pytest.raises(ValueError):
            TokenVerifier(issuer=ISSUER, client_ids=[CLIENT_ID], jwks=cache, leeway=leeway)
    for leeway in (0, 60):
        TokenVerifier(issuer=ISSUER, client_ids=[CLIENT_ID], jwks=cache, leeway=leeway)
    with pytest.raises(TypeError):  # "in" on a str would be a substring match
        TokenVerifier(issuer=ISSUER, client_ids=CLIENT_ID, jwks=cache)
    with pytest.raises(ValueError):
        TokenVerifier(issuer=ISSUER, client_ids=[], jwks=cache)
    with pytest.raises(ValueError):
        TokenVerifier(issuer="", client_ids=[CLIENT_ID], jwks=cache)


async def test_bad_token_use_argument(verifier: TokenVerifier) -> None:
    with pytest.raises(ValueError):
        await verifier.verify(token(), token_use="refresh")  # type: ignore[arg-type]


async def test_errors_do_not_echo_token_content(verifier: TokenVerifier) -> None:
    marker = "SECRETMARKER"
    cases = [
        token(kid=marker),
        token(id_claims(iss=marker)),
        token(id_claims(aud=marker)),
        token(id_claims(token_use=marker)),
        token(id_claims(exp=marker)),
        token(key=ATTACKER, kid="kid-a", x=marker),
        f"{b64json({'alg': marker})}.e30.",
    ]
    for t in cases:
        with pytest.raises(TokenError) as info:
            await verifier.verify(t, token_use="id")
        assert marker not in str(info.value) and t not in str(info.value)
        # No chained library exception whose message could quote the token either.
        assert info.value.__cause__ is None


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
async def test_fuzz_only_token_errors(verifier: TokenVerifier, data: st.DataObject) -> None:
    """Garbage and one-character mutations of a valid token raise a TokenError, nothing else."""
    good = token()
    pos = data.draw(st.integers(0, len(good) - 1))
    char = data.draw(st.sampled_from("ABCxyz019-_.=+/ \x00é"))
    mutated = good[:pos] + char + good[pos + 1 :]
    garbage = data.draw(st.text(max_size=200))
    for candidate in (mutated, garbage):
        if candidate == good:
            continue
        with pytest.raises(TokenError):
            await verifier.verify(candidate, token_use="id")


# --------------------------------------------------------------------------------------------
# JWKS cache
# --------------------------------------------------------------------------------------------


async def test_loaded_flag(jwks: Jwks, clock: FakeClock) -> None:
    cache = JwksCache(jwks.url())
    try:
        assert not cache.loaded
        await cache.load()
        assert cache.loaded
        assert isinstance(await cache.get_key("kid-a"), rsa.RSAPublicKey)
    finally:
        await cache.close()


async def test_concurrent_unknown_kids_share_one_fetch(jwks: Jwks, clock: FakeClock) -> None:
    """With no rate limit at all, 200 concurrent misses still cost a single shared fetch."""
    cache = JwksCache(jwks.url(), min_refetch_interval=0.0)
    await cache.load()
    try:
        v = TokenVerifier(issuer=ISSUER, client_ids=[CLIENT_ID], jwks=cache)
        jwks.state.delay = 0.05
        results = await asyncio.gather(
            *(v.verify(token(kid=uuid.uuid4().hex), token_use="id") for _ in range(200)),
            return_exceptions=True,
        )
        assert all(isinstance(r, UnknownKeyId) for r in results)
        assert jwks.state.hits["/jwks"] == 2  # load + one refetch
    finally:
        await cache.close()


async def test_unknown_kid_flood_is_rate_limited(
    verifier: TokenVerifier, cache: JwksCache, jwks: Jwks, clock: FakeClock
) -> None:
    clock.now += 31  # past the interval since load()
    results = await asyncio.gather(
        *(verifier.verify(token(kid=uuid.uuid4().hex), token_use="id") for _ in range(200)),
        return_exceptions=True,
    )
    assert all(isinstance(r, UnknownKeyId) for r in results)
    assert jwks.state.hits["/jwks"] == 2
    # More random kids inside the interval, one by one: no fetch at all.
    for _ in range(50):
        clock.now += 0.5
        with pytest.raises(UnknownKeyId):
            await verifier.verify(token(kid=uuid.uuid4().hex), token_use="id")
    assert jwks.state.hits["/jwks"] == 2
    clock.now += 6  # 31 s since the refetch
    with pytest.raises(UnknownKeyId):
        await verifier.verify(token(kid=uuid.uuid4().hex), token_use="id")
    assert jwks.state.hits["/jwks"] == 3
    assert cache.fetch_count == 3
    assert await verifier.verify(token(), token_use="id")  # known kid never waits on any of it


async def test_rotation(verifier: TokenVerifier, jwks: Jwks, clock: FakeClock) -> None:
    old, new = token(), token(key=KEY_B, kid="kid-b")
    jwks.state.keys = [jwk_of(KEY_A, "kid-a"), jwk_of(KEY_B, "kid-b")]
    with pytest.raises(UnknownKeyId):  # published, but within the interval since load()
        await verifier.verify(new, token_use="id")
    assert jwks.state.hits["/jwks"] == 1
    clock.now += 30
    assert await verifier.verify(new, token_use="id")
    assert jwks.state.hits["/jwks"] == 2
    assert await verifier.verify(old, token_use="id")  # both published: both accepted
    assert await verifier.verify(new, token_use="id")
    assert jwks.state.hits["/jwks"] == 2

    # The old key is withdrawn; the next successful fetch drops it.
    jwks.state.keys = [jwk_of(KEY_B, "kid-b")]
    assert await verifier.verify(old, token_use="id")  # not refetched yet
    clock.now += 30
    with pytest.raises(UnknownKeyId):
        await verifier.verify(token(kid="kid-c"), token_use="id")
    assert jwks.state.hits["/jwks"] == 3
    with pytest.raises(UnknownKeyId):
        await verifier.verify(old, token_use="id")
    assert await verifier.verify(new, token_use="id")


@pytest.mark.parametrize(
    "failure",
    [
        {"status": 500},
        {"status": 404},
        {"body": b"<html>oops</html>"},
        {"body": b'{"keys": "nope"}'},
        {"body": b"[]"},
        {"body": json.dumps({"keys": [jwk_of(KEY_B, "kid-b", use="enc")]}).encode()},
        {"body": b'{"keys": []}'},
    ],
)
async def test_failed_refetch_keeps_old_keys(
    verifier: TokenVerifier, cache: JwksCache, jwks: Jwks, clock: FakeClock, failure: Any
) -> None:
    for name, value in failure.items():
        setattr(jwks.state, name, value)
    clock.now += 30
    with pytest.raises(JwksUnavailable):
        await verifier.verify(token(key=KEY_B, kid="kid-b"), token_use="id")
    assert jwks.state.hits["/jwks"] == 2
    assert cache.loaded
    assert await verifier.verify(token(), token_use="id") == id_claims()
    # The failed attempt counts against the interval too: a dead endpoint is not hammered.
    with pytest.raises(UnknownKeyId):
        await verifier.verify(token(key=KEY_B, kid="kid-b"), token_use="id")
    assert jwks.state.hits["/jwks"] == 2


async def test_redirect_is_a_failure(jwks: Jwks, clock: FakeClock) -> None:
    cache = JwksCache(jwks.url("/redirect"))
    try:
        with pytest.raises(JwksUnavailable):
            await cache.load()
        assert not cache.loaded
        assert jwks.state.hits == Counter({"/redirect": 1})  # the target was never requested
    finally:
        await cache.close()


@pytest.mark.parametrize("chunked", [False, True])
async def test_body_size_limit(jwks: Jwks, clock: FakeClock, chunked: bool) -> None:
    padding_key = {"kid": "pad", "kty": "oct", "k": "A" * tokens.MAX_JWKS_BYTES}
    jwks.state.keys = [jwk_of(KEY_A, "kid-a"), padding_key]
    jwks.state.chunked = chunked
    cache = JwksCache(jwks.url())
    try:
        with pytest.raises(JwksUnavailable):
            await cache.load()
        assert not cache.loaded
        jwks.state.keys = [jwk_of(KEY_A, "kid-a")]  # the same path at a normal size works
        await cache.load()
        assert cache.loaded
    finally:
        await cache.close()


async def test_timeout(jwks: Jwks, clock: FakeClock) -> None:
    jwks.state.delay = 2.0
    cache = JwksCache(jwks.url(), timeout=0.2)
    try:
        started = time.monotonic()
        with pytest.raises(JwksUnavailable):
            await cache.load()
        assert time.monotonic() - started < 1.5
    finally:
        await cache.close()


async def test_unreachable(clock: FakeClock) -> None:
    cache = JwksCache("http://127.0.0.1:9/jwks", timeout=1.0)
    try:
        with pytest.raises(JwksUnavailable):
            await cache.load()
    finally:
        await cache.close()


async def test_recovers_after_failed_initial_load(jwks: Jwks, clock: FakeClock) -> None:
    jwks.state.status = 503
    cache = JwksCache(jwks.url(), min_refetch_interval=30.0)
    try:
        with pytest.raises(JwksUnavailable):
            await cache.load()
        v = TokenVerifier(issuer=ISSUER, client_ids=[CLIENT_ID], jwks=cache)
        jwks.state.status = 200
        with pytest.raises(JwksUnavailable):  # nothing loaded, and a retry is not due yet
            await v.verify(token(), token_use="id")
        assert jwks.state.hits["/jwks"] == 1
        clock.now += 30
        assert await v.verify(token(), token_use="id")
        assert cache.loaded and jwks.state.hits["/jwks"] == 2
    finally:
        await cache.close()


async def test_cancelled_waiter_does_not_cancel_shared_fetch(
    cache: JwksCache, jwks: Jwks, clock: FakeClock
) -> None:
    jwks.state.keys = [jwk_of(KEY_A, "kid-a"), jwk_of(KEY_B, "kid-b")]
    jwks.state.delay = 0.2
    clock.now += 30
    first = asyncio.create_task(cache.get_key("kid-b"))
    second = asyncio.create_task(cache.get_key("kid-b"))
    await asyncio.sleep(0.05)
    first.cancel()
    assert isinstance(await second, rsa.RSAPublicKey)
    with pytest.raises(asyncio.CancelledError):
        await first
    assert jwks.state.hits["/jwks"] == 2


async def test_given_session_is_used_and_left_open(jwks: Jwks, clock: FakeClock) -> None:
    async with aiohttp.ClientSession() as session:
        cache = JwksCache(jwks.url(), session=session)
        await cache.load()
        await cache.close()
        assert not session.closed
        async with session.get(jwks.url()) as resp:
            assert resp.status == 200
    # A session closed under the cache is a fetch failure, not a stray RuntimeError.
    cache = JwksCache(jwks.url(), session=session)
    with pytest.raises(JwksUnavailable):
        await cache.load()


async def test_closed_cache_does_not_fetch(jwks: Jwks, clock: FakeClock) -> None:
    cache = JwksCache(jwks.url())
    await cache.load()
    await cache.close()
    with pytest.raises(JwksUnavailable):
        await cache.load()
    assert jwks.state.hits["/jwks"] == 1


def test_cache_constructor_validation() -> None:
    with pytest.raises(ValueError):
        JwksCache("http://127.0.0.1/jwks", timeout=0)
    with pytest.raises(ValueError):
        JwksCache("http://127.0.0.1/jwks", min_refetch_interval=-1)


# --------------------------------------------------------------------------------------------
# Cost
# --------------------------------------------------------------------------------------------


async def test_verify_cost_with_cached_key(verifier: TokenVerifier, jwks: Jwks) -> None:
    """Prints µs per verify (run with -s); the bound only catches a pathological regression."""
    t, n = token(), 2000
    await verifier.verify(t, token_use="id")
    started = time.perf_counter()
    for _ in range(n):
        await verifier.verify(t, token_use="id")
    per_verify_us = (time.perf_counter() - started) / n * 1e6
    print(f"\nverify with cached key: {per_verify_us:.1f} µs")
    assert per_verify_us < 5000
    assert jwks.state.hits["/jwks"] == 1
