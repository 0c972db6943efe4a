"""Async Cognito user-pool API over one reused aioboto3 client.

Knows nothing of browsers or aiohttp.web: callers pass plain values (and a ContextData) and get
an :class:`AuthResult` back: tokens, or the next challenge Cognito asks for.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import logging
import random
import time
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field, replace
from typing import Any

import aioboto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ReadTimeoutError

from proxy.cognito import srp
from proxy.cognito.breaker import CircuitBreaker, RetryBudget
from proxy.cognito.errors import (
    BadClientSecret,
    CognitoError,
    Misconfigured,
    RefreshFlowNotAllowed,
    Unavailable,
    from_response,
)
from proxy.settings import CognitoSettings

log = logging.getLogger("proxy.cognito")

# Concurrent Cognito calls per process: a refresh wave of every signed-in session must not
# queue behind a few slow calls.
COGNITO_CONNECTIONS = 100

# Operations that are safe to send again after a transient failure: starting a sign-in (a new
# SRP_A or the same password check), refreshing, revoking. Never a challenge answer: it is
# single-use, and a resend after a lost reply reads as a wrong answer (or a replay).
# GetTokensFromRefreshToken with rotation: a resend inside the client's grace period is what
# the grace period is for (and no resend follows a read timeout, see _call).
_RETRY_SAFE = frozenset(
    {"initiate_auth", "admin_initiate_auth", "revoke_token", "get_tokens_from_refresh_token"}
)
# The settings holding the client secrets, in order: named in the log lines of a rotation.
_SECRET_SETTINGS = ("GATE_COGNITO_CLIENT_SECRET", "GATE_COGNITO_CLIENT_SECRET_NEXT")
# Operations that refresh tokens, whatever the configured flow: one metric label, "refresh".
_REFRESH_LABEL = "refresh"
# Answers meaning "this API / flow does not exist here" (an emulator without the operation).
_UNKNOWN_OPERATION = frozenset(
    {"UnknownOperationException", "InvalidAction", "NotImplementedException", "NotImplemented"}
)
_FLOW_LOG_INTERVAL = 60.0  # the "refresh flow not allowed" error line, at most once a minute
MAX_ATTEMPTS = 3
_BACKOFF_BASE = 0.1
_BACKOFF_CAP = 1.0
# (operation, outcome: "ok" or an error code, seconds) → metrics; see observe.Metrics.
CallObserver = Callable[[str, str, float], None]


def _transient(exc: CognitoError) -> bool:
    """Throttling or an unreachable/failing service: counts against the breaker and may be
    retried. A lockout (TooManyFailedAttempts, LimitExceeded) is neither: Cognito is up, and
    retrying makes it worse."""
    return isinstance(exc, Unavailable) or exc.code in (
        "TooManyRequestsException",
        "ThrottlingException",
    )


@dataclass(frozen=True)
class Tokens:
    id_token: str
    access_token: str
    refresh_token: str | None
    expires_in: int

    def __repr__(self) -> str:  # tokens must never reach a log through a repr
        return f"Tokens(expires_in={self.expires_in})"


@dataclass(frozen=True)
class Challenge:
    name: str
    session: str | None
    parameters: dict[str, str]
    # USER_AUTH's SELECT_CHALLENGE lists the factors at the top level, not in the parameters.
    available: tuple[str, ...] = ()


@dataclass(frozen=True)
class NewDevice:
    """``NewDeviceMetadata``: Cognito tracks this browser as a device until ConfirmDevice."""

    device_key: str
    device_group_key: str


@dataclass(frozen=True)
class Device:
    """A confirmed device's credentials; kept server-side only, sealed."""

    device_key: str
    device_group_key: str
    device_password: str = field(repr=False)


@dataclass(frozen=True)
class AuthResult:
    tokens: Tokens | None = None
    challenge: Challenge | None = None
    new_device: NewDevice | None = None
    # The username Cognito knows (USER_ID_FOR_SRP) when the user typed an alias.
    user_id: str | None = None


@dataclass(frozen=True)
class CodeDelivery:
    """Where Cognito sent a code (masked by Cognito, e.g. ``a***@e***``); may be empty."""

    medium: str = ""
    destination: str = ""


@dataclass(frozen=True)
class ContextData:
    """What Cognito's threat protection should see: the real user, not the proxy."""

    ip_address: str
    server_name: str
    server_path: str
    headers: tuple[tuple[str, str], ...] = field(default=())

    def to_api(self) -> dict[str, Any]:
        return {
            "IpAddress": self.ip_address,
            "ServerName": self.server_name,
            "ServerPath": self.server_path,
            "HttpHeaders": [{"headerName": k, "headerValue": v} for k, v in self.headers],
        }


def _user_id(result: AuthResult) -> str | None:
    if result.challenge is None:
        return None
    params = result.challenge.parameters
    return params.get("USER_ID_FOR_SRP") or params.get("USERNAME")


async def _signed_claim(
    sign: Callable[..., str], params: Mapping[str, str], secret: srp.SrpSecret, **who: str
) -> dict[str, str]:
    """The claim that answers PASSWORD_VERIFIER (``sign`` = srp.password_claim_signature) or
    DEVICE_PASSWORD_VERIFIER (srp.device_password_claim_signature) for ``who``, signed in a
    thread, off the event loop. A challenge without its SRP values, or with bad ones, is
    BadSrpChallenge."""
    timestamp = srp.cognito_timestamp()
    try:
        signature = await asyncio.to_thread(
            functools.partial(
                sign,
                secret=secret,
                srp_b_hex=params["SRP_B"],
                salt_hex=params["SALT"],
                secret_block_b64=params["SECRET_BLOCK"],
                timestamp=timestamp,
                **who,
            )
        )
    except (KeyError, srp.SrpError) as exc:
        raise CognitoError("BadSrpChallenge", type(exc).__name__) from None
    return {
        "PASSWORD_CLAIM_SECRET_BLOCK": params["SECRET_BLOCK"],
        "PASSWORD_CLAIM_SIGNATURE": signature,
        "TIMESTAMP": timestamp,
    }


def secret_hash(client_id: str, client_secret: str, username: str) -> str:
    digest = hmac.new(
        client_secret.encode(), (username + client_id).encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


# botocore logs request and response bodies (passwords, SRP values, tokens) at DEBUG.
_SDK_LOGGERS = ("botocore", "aiobotocore", "aioboto3")


def quiet_sdk_logs() -> None:
    """Keep the AWS SDK's loggers at WARNING or above, whatever the root level is."""
    for name in _SDK_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.WARNING:
            logger.setLevel(logging.WARNING)


class CognitoClient:
    """One long-lived client per process; ``start()`` before use, ``close()`` at shutdown."""

    def __init__(
        self,
        settings: CognitoSettings,
        *,
        breaker: CircuitBreaker | None = None,
        retries: RetryBudget | None = None,
        observer: CallObserver | None = None,
    ) -> None:
        self._settings = settings
        self.breaker = breaker or CircuitBreaker()
        self._retries = retries or RetryBudget()
        self._observer = observer
        self._stack = AsyncExitStack()
        self._client: Any = None
        # Both secrets of a rotation; calls use _secrets[_current] and switch on refusal.
        self._secrets = tuple(
            secret.get_secret_value()
            for secret in (settings.client_secret, settings.client_secret_next)
            if secret is not None
        )
        self._current = 0
        self._flow_logged_at = -_FLOW_LOG_INTERVAL

    @property
    def _secret(self) -> str | None:
        return self._secrets[self._current] if self._secrets else None

    @property
    def auth_flow(self) -> str:
        return self._settings.auth_flow

    @property
    def admin(self) -> bool:
        """Whether sign-in runs on the Admin API (IAM credentials, ContextData)."""
        return self._settings.auth_flow == "ADMIN_USER_PASSWORD_AUTH"

    async def start(self) -> None:
        quiet_sdk_logs()
        session = aioboto3.Session()
        config = Config(
            connect_timeout=self._settings.timeout,
            read_timeout=self._settings.timeout,
            # A challenge answer is single-use: botocore must never resend one blindly.
            retries={"total_max_attempts": 1},
            user_agent_extra="cognito-gate",
            # botocore's default of 10 connections queued 200 sessions' refreshes behind a slow
            # Cognito for minutes (issue 18.3); the wait for one is inside the timeout below.
            max_pool_connections=COGNITO_CONNECTIONS,
        )
        self._client = await self._stack.enter_async_context(
            session.client(
                "cognito-idp",
                region_name=self._settings.resolved_region,
                endpoint_url=self._settings.endpoint_url,
                config=config,
            )
        )

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None

    # -- helpers ---------------------------------------------------------------------------

    def _with_secret(self, params: dict[str, str], username: str) -> dict[str, str]:
        if self._secret is not None:
            params["SECRET_HASH"] = secret_hash(self._settings.client_id, self._secret, username)
        return params

    async def _call(
        self, operation: str, *, hash_user: str | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """One API call; when Cognito refuses the client secret and a second one is configured
        (a secret rotation), the same call once more with the other secret, which is then used
        from now on. ``hash_user`` is the name a SECRET_HASH without USERNAME was made over."""
        try:
            return await self._call_once(operation, **kwargs)
        except BadClientSecret:
            if len(self._secrets) < 2:
                log.error(
                    "cognito %s: Cognito refused the client secret; check %s",
                    operation,
                    _SECRET_SETTINGS[0],
                )
                raise
            refused, other = self._current, 1 - self._current
            try:
                response = await self._call_once(
                    operation, **self._with_other_secret(kwargs, self._secrets[other], hash_user)
                )
            except BadClientSecret:
                log.error(
                    "cognito %s: Cognito refused both %s and %s", operation, *_SECRET_SETTINGS
                )
                raise
            self._current = other
            log.warning(
                "cognito %s: %s works and %s was refused; using %s from now on (finish the "
                "rotation by making the working secret %s)",
                operation,
                _SECRET_SETTINGS[other],
                _SECRET_SETTINGS[refused],
                _SECRET_SETTINGS[other],
                _SECRET_SETTINGS[0],
            )
            return response

    def _with_other_secret(
        self, kwargs: dict[str, Any], secret: str, hash_user: str | None
    ) -> dict[str, Any]:
        """``kwargs`` with every secret-derived value made with ``secret`` instead."""
        client_id = self._settings.client_id
        again = dict(kwargs)
        if "ClientSecret" in again:
            again["ClientSecret"] = secret
        if "SecretHash" in again:
            again["SecretHash"] = secret_hash(client_id, secret, again["Username"])
        for member in ("AuthParameters", "ChallengeResponses"):
            params = again.get(member)
            if isinstance(params, dict) and "SECRET_HASH" in params:
                name = params.get("USERNAME") or hash_user
                if name is None:  # pragma: no cover - every caller hashing without USERNAME says
                    raise AssertionError("SECRET_HASH without USERNAME needs hash_user")
                again[member] = {**params, "SECRET_HASH": secret_hash(client_id, secret, name)}
        return again

    async def _call_once(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """One API call through the breaker, retried with full jitter when safe (see above)."""
        if self._client is None:
            raise RuntimeError("CognitoClient.start() was not awaited")
        refreshing = kwargs.get("AuthFlow") == "REFRESH_TOKEN_AUTH" or (
            operation == "get_tokens_from_refresh_token"
        )
        label = _REFRESH_LABEL if refreshing else operation
        attempts = MAX_ATTEMPTS if operation in _RETRY_SAFE else 1
        if not self.breaker.allow():
            self._observe(label, "CircuitOpen", 0.0)
            raise Unavailable("CircuitOpen", "Cognito circuit breaker is open")
        self._retries.deposit()
        for attempt in range(1, attempts + 1):
            started = time.perf_counter()
            try:
                response = await self._attempt(operation, kwargs)
            except CognitoError as exc:
                outcome = (
                    "RefreshFlowNotAllowed" if isinstance(exc, RefreshFlowNotAllowed) else exc.code
                )
                self._observe(label, outcome, time.perf_counter() - started)
                if not _transient(exc):
                    self.breaker.success()  # Cognito answered: it is up
                    raise
                # Not after a read timeout: the call may have been done, and waiting again
                # doubles the user's wait. Nor once the breaker has opened meanwhile (other
                # calls failed too).
                if attempt == attempts or exc.detail == "timeout" or self.breaker.is_open:
                    # One failed call, however many attempts it took: the breaker counts calls.
                    self.breaker.failure()
                    raise
                if not self._retries.withdraw():
                    # Past the retry budget (a wave of calls failing together must not each
                    # try twice more). A call that had no retry does not count against the
                    # breaker (a 30 % flaky wave must not open it); one that failed a retry
                    # too does, so an outage still opens it. (A probe frees its slot.)
                    if attempt > 1:
                        self.breaker.failure()
                    else:
                        self.breaker.release()
                    raise
                delay = random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2**attempt))  # noqa: S311
                log.info("cognito %s: %s, retrying in %.2fs", operation, exc.code, delay)
                await asyncio.sleep(delay)
                continue
            except BaseException:
                self.breaker.release()
                raise
            self._observe(label, "ok", time.perf_counter() - started)
            self.breaker.success()
            return response
        raise AssertionError("unreachable")  # pragma: no cover

    def _observe(self, operation: str, outcome: str, seconds: float) -> None:
        if self._observer is not None:
            self._observer(operation, outcome, seconds)

    async def _attempt(self, operation: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        try:
            # The whole attempt, waiting for a pooled connection included: botocore's own
            # timeouts start only once it has one.
            async with asyncio.timeout(self._settings.timeout):
                response: dict[str, Any] = await getattr(self._client, operation)(**kwargs)
        except ClientError as exc:
            error = self._refresh_flow_refusal(
                operation, kwargs, from_response(exc.response.get("Error", {}))
            )
            log.info("cognito %s failed: %s", operation, error.code)
            raise error from None
        except NoCredentialsError:
            log.error("cognito %s needs AWS credentials and none were found", operation)
            raise Misconfigured("NoCredentials") from None
        except (TimeoutError, ReadTimeoutError) as exc:
            log.warning("cognito %s timed out: %s", operation, type(exc).__name__)
            raise Unavailable(type(exc).__name__, "timeout") from None
        except (BotoCoreError, OSError) as exc:
            log.warning("cognito %s unreachable: %s", operation, type(exc).__name__)
            raise Unavailable(type(exc).__name__) from None
        return response

    def _refresh_flow_refusal(
        self, operation: str, kwargs: dict[str, Any], error: CognitoError
    ) -> CognitoError:
        """Cognito saying the configured refresh flow is not offered: RefreshFlowNotAllowed,
        with one clear line (at most a minute apart) telling the operator what to set."""
        if operation == "get_tokens_from_refresh_token":
            refused = error.code in _UNKNOWN_OPERATION
            advice = (
                "this pool or emulator does not offer GetTokensFromRefreshToken: set "
                "GATE_COGNITO_REFRESH_FLOW=REFRESH_TOKEN_AUTH"
            )
        elif kwargs.get("AuthFlow") == "REFRESH_TOKEN_AUTH":
            detail = error.detail.lower()
            refused = error.code == "InvalidParameterException" and (
                "not enabled" in detail or "not supported" in detail or "not allowed" in detail
            )
            advice = (
                "the app client does not allow REFRESH_TOKEN_AUTH (refresh-token rotation is on, "
                "or ALLOW_REFRESH_TOKEN_AUTH is off): set "
                "GATE_COGNITO_REFRESH_FLOW=GetTokensFromRefreshToken (the default)"
            )
        else:
            return error
        if not refused:
            return error
        now = time.monotonic()
        if now - self._flow_logged_at >= _FLOW_LOG_INTERVAL:
            self._flow_logged_at = now
            log.error(
                "cognito refused the refresh flow %s (%s): %s; sessions end when their tokens "
                "expire until this is fixed",
                self._settings.refresh_flow,
                error.code,
                advice,
            )
        return RefreshFlowNotAllowed(error.code, error.detail)

    @staticmethod
    def _result(response: dict[str, Any]) -> AuthResult:
        auth = response.get("AuthenticationResult")
        if auth:
            device = auth.get("NewDeviceMetadata") or {}
            new_device = None
            if device.get("DeviceKey") and device.get("DeviceGroupKey"):
                new_device = NewDevice(str(device["DeviceKey"]), str(device["DeviceGroupKey"]))
            return AuthResult(
                tokens=Tokens(
                    id_token=auth["IdToken"],
                    access_token=auth["AccessToken"],
                    refresh_token=auth.get("RefreshToken"),
                    expires_in=int(auth.get("ExpiresIn", 3600)),
                ),
                new_device=new_device,
            )
        name = response.get("ChallengeName")
        if name:
            return AuthResult(
                challenge=Challenge(
                    name=str(name),
                    session=response.get("Session"),
                    parameters={
                        str(k): str(v)
                        for k, v in (response.get("ChallengeParameters") or {}).items()
                    },
                    available=tuple(str(c) for c in response.get("AvailableChallenges") or ()),
                )
            )
        raise CognitoError("EmptyAnswer", "neither tokens nor a challenge")

    def _user_context(self, context: ContextData | None) -> dict[str, Any]:
        """Public operations carry the client's IP as UserContextData (no encoded data)."""
        if context is None or not context.ip_address:
            return {}
        return {"UserContextData": {"IpAddress": context.ip_address}}

    async def _initiate(
        self, flow: str, params: dict[str, str], context: ContextData | None
    ) -> AuthResult:
        """InitiateAuth, or AdminInitiateAuth (+ContextData) when the Admin API is configured."""
        if self.admin:
            kwargs: dict[str, Any] = {
                "UserPoolId": self._settings.user_pool_id,
                "ClientId": self._settings.client_id,
                "AuthFlow": flow,
                "AuthParameters": params,
            }
            if context is not None:
                kwargs["ContextData"] = context.to_api()
            return self._result(await self._call("admin_initiate_auth", **kwargs))
        return self._result(
            await self._call(
                "initiate_auth",
                ClientId=self._settings.client_id,
                AuthFlow=flow,
                AuthParameters=params,
                **self._user_context(context),
            )
        )

    # -- sign-in -----------------------------------------------------------------------------

    async def password_login(
        self,
        username: str,
        password: str,
        context: ContextData | None = None,
        device: Device | None = None,
    ) -> AuthResult:
        """Authenticate with the configured flow; returns tokens or the next challenge.

        With a remembered ``device`` its key goes along, and the DEVICE_SRP_AUTH challenge
        Cognito then asks for is answered here, so MFA is skipped for that device.
        """
        flow = self._settings.auth_flow
        if flow == "USER_SRP_AUTH" or (flow == "CUSTOM_AUTH" and password):
            result = await self._srp_login(username, password, context, device, flow)
        elif flow in ("CUSTOM_AUTH", "USER_AUTH"):
            # Passwordless starts: the Lambda triggers (CUSTOM_AUTH) or the user's choice of
            # factor (USER_AUTH, SELECT_CHALLENGE) decide what follows.
            extra = {"DEVICE_KEY": device.device_key} if device is not None else {}
            result = await self.start_flow(flow, username, context, extra)
        else:
            params = self._with_secret({"USERNAME": username, "PASSWORD": password}, username)
            if device is not None:
                params["DEVICE_KEY"] = device.device_key
            result = await self._initiate(flow, params, context)
        user_id = result.user_id or _user_id(result) or username
        after = await self._maybe_device_srp(result, user_id, context, device)
        return replace(after, user_id=user_id)

    async def start_flow(
        self,
        flow: str,
        username: str,
        context: ContextData | None = None,
        extra: dict[str, str] | None = None,
    ) -> AuthResult:
        """Start CUSTOM_AUTH or USER_AUTH for ``username`` (no password up front)."""
        params = self._with_secret({"USERNAME": username, **(extra or {})}, username)
        return await self._initiate(flow, params, context)

    async def respond(
        self,
        name: str,
        session: str | None,
        responses: dict[str, str],
        *,
        username: str,
        context: ContextData | None = None,
        device: Device | None = None,
    ) -> AuthResult:
        """Answer a challenge: AdminRespondToAuthChallenge (+ContextData) on the Admin API,
        RespondToAuthChallenge otherwise. ``username`` is the one Cognito knows (from the
        stored flow state), used for USERNAME and SECRET_HASH."""
        answer = self._with_secret({**responses, "USERNAME": username}, username)
        if device is not None:
            answer["DEVICE_KEY"] = device.device_key
        result = await self._respond_raw(name, session, answer, context)
        return await self._maybe_device_srp(result, username, context, device)

    async def _respond_raw(
        self,
        name: str,
        session: str | None,
        responses: dict[str, str],
        context: ContextData | None,
    ) -> AuthResult:
        kwargs: dict[str, Any] = {
            "ClientId": self._settings.client_id,
            "ChallengeName": name,
            "ChallengeResponses": responses,
        }
        if session:
            kwargs["Session"] = session
        if self.admin:
            kwargs["UserPoolId"] = self._settings.user_pool_id
            if context is not None:
                kwargs["ContextData"] = context.to_api()
            return self._result(await self._call("admin_respond_to_auth_challenge", **kwargs))
        kwargs.update(self._user_context(context))
        return self._result(await self._call("respond_to_auth_challenge", **kwargs))

    async def _maybe_device_srp(
        self,
        result: AuthResult,
        username: str,
        context: ContextData | None,
        device: Device | None,
    ) -> AuthResult:
        challenge = result.challenge
        if device is None or challenge is None or challenge.name != "DEVICE_SRP_AUTH":
            return result
        return await self._device_srp(challenge, username, context, device)

    async def _device_srp(
        self,
        challenge: Challenge,
        username: str,
        context: ContextData | None,
        device: Device,
    ) -> AuthResult:
        """DEVICE_SRP_AUTH → DEVICE_PASSWORD_VERIFIER with the device's own SRP secret."""
        user = challenge.parameters.get("USERNAME", username)
        secret = await asyncio.to_thread(srp.new_client_secret)
        step = await self._respond_raw(
            "DEVICE_SRP_AUTH",
            challenge.session,
            self._with_secret(
                {"USERNAME": user, "DEVICE_KEY": device.device_key, "SRP_A": srp.srp_a_hex(secret)},
                user,
            ),
            context,
        )
        verifier = step.challenge
        if verifier is None or verifier.name != "DEVICE_PASSWORD_VERIFIER":
            return step
        params = verifier.parameters
        claim = await _signed_claim(
            srp.device_password_claim_signature,
            params,
            secret,
            device_group_key=device.device_group_key,
            device_key=device.device_key,
            device_password=device.device_password,
        )
        user = params.get("USERNAME", user)
        return await self._respond_raw(
            "DEVICE_PASSWORD_VERIFIER",
            verifier.session,
            self._with_secret({"USERNAME": user, "DEVICE_KEY": device.device_key, **claim}, user),
            context,
        )

    async def _srp_login(
        self,
        username: str,
        password: str,
        context: ContextData | None = None,
        device: Device | None = None,
        flow: str = "USER_SRP_AUTH",
    ) -> AuthResult:
        # The public API carries SRP (moto refuses it through AdminInitiateAuth) and needs no
        # IAM credentials; the modular exponentiations run in a thread, off the event loop.
        secret = await asyncio.to_thread(srp.new_client_secret)
        start_params = self._with_secret(
            {"USERNAME": username, "SRP_A": srp.srp_a_hex(secret)}, username
        )
        if flow == "CUSTOM_AUTH":
            start_params["CHALLENGE_NAME"] = "SRP_A"  # password first, then the custom steps
        if device is not None:
            start_params["DEVICE_KEY"] = device.device_key
        start = self._result(
            await self._call(
                "initiate_auth",
                ClientId=self._settings.client_id,
                AuthFlow=flow,
                AuthParameters=start_params,
                **self._user_context(context),
            )
        )
        return await self._password_verifier(start, password, secret, context, device)

    async def answer_with_password_srp(
        self,
        session: str | None,
        username: str,
        password: str,
        context: ContextData | None = None,
    ) -> AuthResult:
        """USER_AUTH's SELECT_CHALLENGE answered with PASSWORD_SRP, then PASSWORD_VERIFIER."""
        secret = await asyncio.to_thread(srp.new_client_secret)
        start = await self._respond_raw(
            "SELECT_CHALLENGE",
            session,
            self._with_secret(
                {"USERNAME": username, "ANSWER": "PASSWORD_SRP", "SRP_A": srp.srp_a_hex(secret)},
                username,
            ),
            context,
        )
        return await self._password_verifier(start, password, secret, context, None)

    async def _password_verifier(
        self,
        start: AuthResult,
        password: str,
        secret: srp.SrpSecret,
        context: ContextData | None,
        device: Device | None,
    ) -> AuthResult:
        challenge = start.challenge
        if challenge is None or challenge.name != "PASSWORD_VERIFIER":
            return start
        params = challenge.parameters
        user_id = params.get("USER_ID_FOR_SRP")
        if user_id is None:
            raise CognitoError("BadSrpChallenge", "KeyError")
        claim = await _signed_claim(
            srp.password_claim_signature,
            params,
            secret,
            pool_id=self._settings.user_pool_id,
            user_id_for_srp=user_id,
            password=password,
        )
        username = params.get("USERNAME", user_id)
        responses = self._with_secret({"USERNAME": username, **claim}, username)
        if device is not None:
            responses["DEVICE_KEY"] = device.device_key
        try:
            result = await self._respond_raw(
                "PASSWORD_VERIFIER", challenge.session, responses, context
            )
        except CognitoError as exc:
            exc.user_id = user_id  # brute-force regulation also counts Cognito's internal name
            raise
        return replace(result, user_id=user_id)

    # -- TOTP enrolment (MFA_SETUP) ------------------------------------------------------------

    async def associate_software_token(self, session: str) -> tuple[str, str | None]:
        """AssociateSoftwareToken with the challenge Session: (secret, the next Session)."""
        response = await self._call("associate_software_token", Session=session)
        secret = response.get("SecretCode")
        if not secret:
            raise CognitoError("EmptyAnswer", "AssociateSoftwareToken returned no secret")
        return str(secret), response.get("Session")

    async def verify_software_token(
        self, session: str | None, code: str, friendly_name: str | None = None
    ) -> str | None:
        """VerifySoftwareToken; returns the Session to answer MFA_SETUP with."""
        kwargs: dict[str, Any] = {"UserCode": code}
        if session:
            kwargs["Session"] = session
        if friendly_name:
            kwargs["FriendlyDeviceName"] = friendly_name
        response = await self._call("verify_software_token", **kwargs)
        if response.get("Status") != "SUCCESS":
            raise CognitoError("CodeMismatchException", "VerifySoftwareToken did not succeed")
        session_out: str | None = response.get("Session")
        return session_out

    # -- account recovery and confirmation (public API, SECRET_HASH, the client's IP) ----------

    def _account_kwargs(self, username: str, context: ContextData | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"ClientId": self._settings.client_id, "Username": username}
        if self._secret is not None:
            kwargs["SecretHash"] = secret_hash(self._settings.client_id, self._secret, username)
        kwargs.update(self._user_context(context))
        return kwargs

    @staticmethod
    def _delivery(response: dict[str, Any]) -> CodeDelivery:
        details = response.get("CodeDeliveryDetails") or {}
        return CodeDelivery(
            medium=str(details.get("DeliveryMedium") or ""),
            destination=str(details.get("Destination") or ""),
        )

    async def forgot_password(self, username: str, context: ContextData | None) -> CodeDelivery:
        response = await self._call("forgot_password", **self._account_kwargs(username, context))
        return self._delivery(response)

    async def confirm_forgot_password(
        self, username: str, code: str, new_password: str, context: ContextData | None
    ) -> None:
        await self._call(
            "confirm_forgot_password",
            ConfirmationCode=code,
            Password=new_password,
            **self._account_kwargs(username, context),
        )

    async def confirm_sign_up(self, username: str, code: str, context: ContextData | None) -> None:
        await self._call(
            "confirm_sign_up", ConfirmationCode=code, **self._account_kwargs(username, context)
        )

    async def resend_confirmation_code(
        self, username: str, context: ContextData | None
    ) -> CodeDelivery:
        response = await self._call(
            "resend_confirmation_code", **self._account_kwargs(username, context)
        )
        return self._delivery(response)

    # -- devices ---------------------------------------------------------------------------------

    async def confirm_device(
        self, access_token: str, new_device: NewDevice, device_name: str
    ) -> tuple[Device, bool]:
        """ConfirmDevice with a fresh SRP verifier. Returns the device credentials to keep
        (server-side) and whether Cognito needs the user's consent to remember it."""
        verifier = await asyncio.to_thread(
            srp.new_device_verifier, new_device.device_group_key, new_device.device_key
        )
        response = await self._call(
            "confirm_device",
            AccessToken=access_token,
            DeviceKey=new_device.device_key,
            DeviceSecretVerifierConfig=verifier.secret_verifier_config(),
            DeviceName=device_name[:1024],
        )
        device = Device(
            device_key=new_device.device_key,
            device_group_key=new_device.device_group_key,
            device_password=verifier.device_password,
        )
        return device, bool(response.get("UserConfirmationNecessary"))

    async def remember_device(self, access_token: str, device_key: str) -> None:
        await self._call(
            "update_device_status",
            AccessToken=access_token,
            DeviceKey=device_key,
            DeviceRememberedStatus="remembered",
        )

    # -- tokens ------------------------------------------------------------------------------

    async def refresh(
        self, refresh_token: str, username: str, device_key: str | None = None
    ) -> Tokens:
        """New tokens for a refresh token, by the configured ``refresh_flow``.

        GetTokensFromRefreshToken (the default) works with refresh-token rotation on or off;
        with rotation on the answer carries a new refresh token (``Tokens.refresh_token``) that
        replaces this one, else that is None. REFRESH_TOKEN_AUTH never rotates. ``username`` is
        Cognito's internal one (REFRESH_TOKEN_AUTH's SECRET_HASH). With device tracking the
        tokens belong to a device, whose key must come along.
        """
        if self._settings.refresh_flow == "REFRESH_TOKEN_AUTH":
            params = self._with_secret({"REFRESH_TOKEN": refresh_token}, username)
            if device_key:
                params["DEVICE_KEY"] = device_key
            response = await self._call(
                "initiate_auth",
                hash_user=username,
                ClientId=self._settings.client_id,
                AuthFlow="REFRESH_TOKEN_AUTH",
                AuthParameters=params,
            )
        else:
            kwargs: dict[str, Any] = {
                "ClientId": self._settings.client_id,
                "RefreshToken": refresh_token,
            }
            if self._secret is not None:
                kwargs["ClientSecret"] = self._secret  # the secret itself, not a SECRET_HASH
            if device_key:
                kwargs["DeviceKey"] = device_key
            response = await self._call("get_tokens_from_refresh_token", **kwargs)
        result = self._result(response)
        if result.tokens is None:
            raise CognitoError("EmptyAnswer", "refresh returned a challenge")
        return result.tokens

    async def global_sign_out(self, access_token: str) -> None:
        """GlobalSignOut: revokes every refresh token of the user (public API, no IAM)."""
        await self._call("global_sign_out", AccessToken=access_token)

    async def revoke(self, refresh_token: str) -> None:
        kwargs: dict[str, Any] = {"Token": refresh_token, "ClientId": self._settings.client_id}
        if self._secret is not None:
            kwargs["ClientSecret"] = self._secret
        await self._call("revoke_token", **kwargs)

    async def admin_api(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """One Admin API call on the pool (IAM credentials; only when ``admin``): the account
        page's sign-in history. Through the same breaker and retries."""
        return await self._call(operation, UserPoolId=self._settings.user_pool_id, **kwargs)

    async def user_api(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """One of the user's own access-token APIs (ChangePassword, ListDevices, ...), through
        the same breaker and retries; proxy/cognito/account.py holds the calls themselves."""
        return await self._call(operation, **kwargs)
