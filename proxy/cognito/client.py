"""Async Cognito user-pool API over one reused aioboto3 client.

Knows nothing of browsers or aiohttp.web: callers pass plain values (and a ContextData) and get
an :class:`AuthResult` back: tokens, or the next challenge Cognito asks for.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import random
import time
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import aioboto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ReadTimeoutError

from proxy.cognito import srp
from proxy.cognito.breaker import CircuitBreaker
from proxy.cognito.errors import (
    CognitoError,
    Misconfigured,
    Unavailable,
    from_response,
)
from proxy.settings import CognitoSettings

log = logging.getLogger("proxy.cognito")

# Operations that are safe to send again after a transient failure: starting a sign-in (a new
# SRP_A or the same password check), refreshing, revoking. Never a challenge answer: it is
# single-use, and a resend after a lost reply reads as a wrong answer (or a replay).
_RETRY_SAFE = frozenset({"initiate_auth", "admin_initiate_auth", "revoke_token"})
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


@dataclass(frozen=True)
class AuthResult:
    tokens: Tokens | None = None
    challenge: Challenge | None = None


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
        observer: CallObserver | None = None,
    ) -> None:
        self._settings = settings
        self.breaker = breaker or CircuitBreaker()
        self._observer = observer
        self._stack = AsyncExitStack()
        self._client: Any = None
        self._secret = settings.client_secret.get_secret_value() if settings.client_secret else None

    async def start(self) -> None:
        quiet_sdk_logs()
        session = aioboto3.Session()
        config = Config(
            connect_timeout=self._settings.timeout,
            read_timeout=self._settings.timeout,
            # A challenge answer is single-use: botocore must never resend one blindly.
            retries={"total_max_attempts": 1},
            user_agent_extra="cognito-gate",
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

    async def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        """One API call through the breaker, retried with full jitter when safe (see above)."""
        if self._client is None:
            raise RuntimeError("CognitoClient.start() was not awaited")
        label = "refresh" if kwargs.get("AuthFlow") == "REFRESH_TOKEN_AUTH" else operation
        attempts = MAX_ATTEMPTS if operation in _RETRY_SAFE else 1
        if not self.breaker.allow():
            self._observe(label, "CircuitOpen", 0.0)
            raise Unavailable("CircuitOpen", "Cognito circuit breaker is open")
        for attempt in range(1, attempts + 1):
            started = time.perf_counter()
            try:
                response = await self._attempt(operation, kwargs)
            except CognitoError as exc:
                self._observe(label, exc.code, time.perf_counter() - started)
                if not _transient(exc):
                    self.breaker.success()  # Cognito answered: it is up
                    raise
                # Not after a read timeout: the call may have been done, and waiting again
                # doubles the user's wait.
                if attempt == attempts or exc.detail == "timeout":
                    # One failed call, however many attempts it took: the breaker counts calls.
                    self.breaker.failure()
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
            response: dict[str, Any] = await getattr(self._client, operation)(**kwargs)
        except ClientError as exc:
            error = from_response(exc.response.get("Error", {}))
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

    @staticmethod
    def _result(response: dict[str, Any]) -> AuthResult:
        auth = response.get("AuthenticationResult")
        if auth:
            return AuthResult(
                tokens=Tokens(
                    id_token=auth["IdToken"],
                    access_token=auth["AccessToken"],
                    refresh_token=auth.get("RefreshToken"),
                    expires_in=int(auth.get("ExpiresIn", 3600)),
                )
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
                )
            )
        raise CognitoError("EmptyAnswer", "neither tokens nor a challenge")

    # -- sign-in -----------------------------------------------------------------------------

    async def password_login(
        self, username: str, password: str, context: ContextData | None = None
    ) -> AuthResult:
        """Authenticate with the configured flow; returns tokens or the next challenge."""
        flow = self._settings.auth_flow
        if flow == "USER_SRP_AUTH":
            return await self._srp_login(username, password)
        params = self._with_secret({"USERNAME": username, "PASSWORD": password}, username)
        if flow == "ADMIN_USER_PASSWORD_AUTH":
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
            )
        )

    async def _srp_login(self, username: str, password: str) -> AuthResult:
        # The public API carries SRP (moto refuses it through AdminInitiateAuth) and needs no
        # IAM credentials; the modular exponentiations run in a thread, off the event loop.
        secret = await asyncio.to_thread(srp.new_client_secret)
        start = self._result(
            await self._call(
                "initiate_auth",
                ClientId=self._settings.client_id,
                AuthFlow="USER_SRP_AUTH",
                AuthParameters=self._with_secret(
                    {"USERNAME": username, "SRP_A": srp.srp_a_hex(secret)}, username
                ),
            )
        )
        challenge = start.challenge
        if challenge is None or challenge.name != "PASSWORD_VERIFIER":
            return start
        params = challenge.parameters
        try:
            user_id = params["USER_ID_FOR_SRP"]
            timestamp = srp.cognito_timestamp()
            signature = await asyncio.to_thread(
                lambda: srp.password_claim_signature(
                    pool_id=self._settings.user_pool_id,
                    user_id_for_srp=user_id,
                    password=password,
                    secret=secret,
                    srp_b_hex=params["SRP_B"],
                    salt_hex=params["SALT"],
                    secret_block_b64=params["SECRET_BLOCK"],
                    timestamp=timestamp,
                )
            )
        except (KeyError, srp.SrpError) as exc:
            raise CognitoError("BadSrpChallenge", type(exc).__name__) from None
        responses = self._with_secret(
            {
                "USERNAME": params.get("USERNAME", user_id),
                "PASSWORD_CLAIM_SECRET_BLOCK": params["SECRET_BLOCK"],
                "PASSWORD_CLAIM_SIGNATURE": signature,
                "TIMESTAMP": timestamp,
            },
            params.get("USERNAME", user_id),
        )
        kwargs: dict[str, Any] = {
            "ClientId": self._settings.client_id,
            "ChallengeName": "PASSWORD_VERIFIER",
            "ChallengeResponses": responses,
        }
        if challenge.session:
            kwargs["Session"] = challenge.session
        try:
            return self._result(await self._call("respond_to_auth_challenge", **kwargs))
        except CognitoError as exc:
            exc.user_id = user_id
            raise

    # -- tokens ------------------------------------------------------------------------------

    async def refresh(self, refresh_token: str, username: str) -> Tokens:
        """REFRESH_TOKEN_AUTH; ``username`` is Cognito's internal one (for SECRET_HASH)."""
        result = self._result(
            await self._call(
                "initiate_auth",
                ClientId=self._settings.client_id,
                AuthFlow="REFRESH_TOKEN_AUTH",
                AuthParameters=self._with_secret({"REFRESH_TOKEN": refresh_token}, username),
            )
        )
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
