"""Small fakes at the Cognito-client boundary, for the auth unit tables (test_flow_decisions.py,
test_completion.py, test_auth_routes.py): no Cognito double, no moto, no Redis.

``FakeCognito`` stands where ``CognitoClient`` stands: each method answers from what the row
scripted (a value, or a Cognito refusal made by ``refusal`` through the same code → error
mapping botocore's errors go through) and records what it was asked. ``FakeVerifier`` reads
the claims straight out of the fake tokens ``tokens()`` makes. ``AuthHarness`` is the real
``AuthRoutes`` (kit, handlers, Completion, Authenticator, DeviceStore, Regulator, Refresher)
over those two and a memory store that can be taken down, served by aiohttp's TestServer with
no cookie jar: every request names its cookies, every answer is read as a browser would.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any

from aiohttp import DummyCookieJar, web
from aiohttp.test_utils import TestClient, TestServer

from proxy.auth import csrf
from proxy.auth.devices import DeviceStore
from proxy.auth.flow import Authenticator
from proxy.auth.kit import AuthKit
from proxy.auth.pages import Branding, Pages
from proxy.auth.regulation import Limit, Regulator
from proxy.auth.routes import AuthRoutes
from proxy.auth.state import LoginState
from proxy.cognito import errors
from proxy.cognito.client import (
    AuthResult,
    Challenge,
    CodeDelivery,
    Device,
    NewDevice,
    Tokens,
)
from proxy.cognito.tokens import InvalidSignature, TokenUseMismatch
from proxy.cookies import OurCookies
from proxy.refresh import Refresher
from proxy.sessions.memory import MemoryStore
from proxy.sessions.sealed import SealedStore
from proxy.sessions.session import Session, SessionManager
from proxy.sessions.store import StoreUnavailable

PREFIX = "/_auth"
COOKIES = OurCookies("gate", secure=False)
LOGIN_TIMEOUT = 300.0
REMEMBER_LIFETIME = 30 * 86400.0

# -- Cognito's answers ---------------------------------------------------------------------------


def refusal(code: str, message: str = "") -> errors.CognitoError:
    """Cognito's error as the client raises it (botocore's Error → our type)."""
    return errors.from_response({"Code": code, "Message": message})


BAD_PASSWORD = ("NotAuthorizedException", "Incorrect username or password.")
BLOCKED = ("NotAuthorizedException", "Unable to login because of security reasons.")
SESSION_EXPIRED = ("NotAuthorizedException", "Invalid session for the user, session is expired.")
TOO_MANY_CODES = ("NotAuthorizedException", "Invalid code or auth state for the user.")


def _fake_jwt(claims: Mapping[str, Any]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(dict(claims)).encode()).decode().rstrip("=")
    return f"fake.{body}"


def tokens(
    sub: str = "s-1",
    username: str = "ann",
    *,
    email: str = "ann@example.com",
    life: float = 3600.0,
    refresh: str | None = "ref-1",
    other_sub: str | None = None,
    bad: bool = False,
) -> Tokens:
    """Tokens as Cognito would hand them back; ``other_sub``: an access token of another user,
    ``bad``: an ID token that fails verification."""
    exp = time.time() + life
    id_claims = {
        "sub": sub,
        "cognito:username": username,
        "email": email,
        "token_use": "id",
        "exp": exp,
    }
    access = {"sub": other_sub or sub, "username": username, "token_use": "access", "exp": exp}
    return Tokens(
        id_token="bad.token" if bad else _fake_jwt(id_claims),
        access_token=_fake_jwt(access),
        refresh_token=refresh,
        expires_in=int(life),
    )


def signed_in(new_device: NewDevice | None = None, **kw: Any) -> AuthResult:
    return AuthResult(tokens=tokens(**kw), new_device=new_device)


def challenge(
    name: str,
    session: str | None = "cog-session-1",
    available: tuple[str, ...] = (),
    user_id: str | None = None,
    **parameters: str,
) -> AuthResult:
    return AuthResult(
        challenge=Challenge(name, session, dict(parameters), available), user_id=user_id
    )


class FakeVerifier:
    """TokenVerifier's one method: the claims of a fake token, or the error a real check gives."""

    async def verify(self, token: str, *, token_use: str) -> dict[str, Any]:
        if not token.startswith("fake."):
            raise InvalidSignature("not signed by the pool")
        body = token.removeprefix("fake.")
        claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        if claims.get("token_use") != token_use:
            raise TokenUseMismatch("wrong token_use")
        return claims


@dataclass
class Call:
    name: str
    args: dict[str, Any]


Answer = Any  # a value, a CognitoError to raise, or a callable(**args) giving either


class FakeCognito:
    """Stands where CognitoClient stands. ``will(name, *answers)`` scripts a method: each call
    takes the next answer, the last one repeats. Unscripted calls get the harmless default
    (a sign-out, a revoke, ConfirmDevice asking for consent...), or fail the test loudly."""

    def __init__(self, auth_flow: str = "USER_SRP_AUTH") -> None:
        self.auth_flow = auth_flow
        self.calls: list[Call] = []
        self._script: dict[str, list[Answer]] = {}

    def will(self, name: str, *answers: Answer) -> FakeCognito:
        assert hasattr(self, name), name
        self._script[name] = list(answers)
        return self

    def called(self, name: str) -> list[dict[str, Any]]:
        return [c.args for c in self.calls if c.name == name]

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.calls]

    async def _answer(self, name: str, default: Answer = None, **args: Any) -> Any:
        self.calls.append(Call(name, args))
        script = self._script.get(name)
        if script:
            answer = script.pop(0) if len(script) > 1 else script[0]
        elif default is not None:
            answer = default
        else:
            raise AssertionError(f"unscripted Cognito call {name}({args})")
        if callable(answer) and not isinstance(answer, type):
            answer = answer(**args)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    # -- sign-in --------------------------------------------------------------------------------

    async def password_login(
        self, username: str, password: str, context: Any = None, device: Device | None = None
    ) -> AuthResult:
        result: AuthResult = await self._answer(
            "password_login", username=username, password=password, device=device
        )
        return result

    async def respond(
        self,
        name: str,
        session: str | None,
        responses: dict[str, str],
        *,
        username: str,
        context: Any = None,
        device: Device | None = None,
    ) -> AuthResult:
        result: AuthResult = await self._answer(
            "respond",
            challenge=name,
            session=session,
            responses=responses,
            username=username,
            device=device,
        )
        return result

    async def answer_with_password_srp(
        self, session: str | None, username: str, password: str, context: Any = None
    ) -> AuthResult:
        result: AuthResult = await self._answer(
            "answer_with_password_srp", session=session, username=username, password=password
        )
        return result

    async def associate_software_token(self, session: str) -> tuple[str, str | None]:
        answer: tuple[str, str | None] = await self._answer(
            "associate_software_token", ("JBSWY3DPEHPK3PXP", "cog-session-2"), session=session
        )
        return answer

    async def verify_software_token(
        self, session: str | None, code: str, friendly_name: str | None = None
    ) -> str | None:
        answer: str | None = await self._answer(
            "verify_software_token", "cog-session-3", session=session, code=code
        )
        return answer

    # -- recovery -------------------------------------------------------------------------------

    async def forgot_password(self, username: str, context: Any) -> CodeDelivery:
        answer: CodeDelivery = await self._answer(
            "forgot_password", CodeDelivery("EMAIL", "a***@e***"), username=username
        )
        return answer

    async def confirm_forgot_password(
        self, username: str, code: str, new_password: str, context: Any
    ) -> None:
        await self._answer(
            "confirm_forgot_password",
            _OK,
            username=username,
            code=code,
            new_password=new_password,
        )

    async def confirm_sign_up(self, username: str, code: str, context: Any) -> None:
        await self._answer("confirm_sign_up", _OK, username=username, code=code)

    async def resend_confirmation_code(self, username: str, context: Any) -> CodeDelivery:
        answer: CodeDelivery = await self._answer(
            "resend_confirmation_code", CodeDelivery("SMS", "+*******0123"), username=username
        )
        return answer

    # -- devices and tokens ---------------------------------------------------------------------

    async def confirm_device(
        self, access_token: str, new_device: NewDevice, device_name: str
    ) -> tuple[Device, bool]:
        answer: tuple[Device, bool] = await self._answer(
            "confirm_device",
            lambda **_: (Device(new_device.device_key, new_device.device_group_key, "dpw"), True),
            access_token=access_token,
            new_device=new_device,
            device_name=device_name,
        )
        return answer

    async def remember_device(self, access_token: str, device_key: str) -> None:
        await self._answer("remember_device", _OK, access_token=access_token, device_key=device_key)

    async def refresh(
        self, refresh_token: str, username: str, device_key: str | None = None
    ) -> Tokens:
        answer: Tokens = await self._answer(
            "refresh", refresh_token=refresh_token, username=username, device_key=device_key
        )
        return answer

    async def global_sign_out(self, access_token: str) -> None:
        await self._answer("global_sign_out", _OK, access_token=access_token)

    async def revoke(self, refresh_token: str) -> None:
        await self._answer("revoke", _OK, refresh_token=refresh_token)


def _ok(**_: Any) -> None:
    return None


_OK: Callable[..., None] = _ok  # a default that succeeds with nothing to say


# -- the store ------------------------------------------------------------------------------------


class FlakyStore:
    """The memory store, which ``down = True`` turns into an unreachable one."""

    def __init__(self) -> None:
        self._store = MemoryStore()
        self.down = False

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._store, name)
        if not callable(attr):
            return attr

        async def call(*args: Any, **kw: Any) -> Any:
            if self.down:
                raise StoreUnavailable(f"{name}: connection refused")
            return await attr(*args, **kw)

        return call


# -- the pages, served ----------------------------------------------------------------------------


def session_record(
    sub: str = "s-1",
    username: str = "ann",
    *,
    life: float = 3600.0,
    refresh: str | None = "ref-1",
    device_key: str | None = None,
) -> Session:
    now = time.time()
    t = tokens(sub, username, life=life, refresh=refresh)
    return Session(
        username=username,
        sub=sub,
        claims={"sub": sub, "cognito:username": username, "email": f"{username}@example.com"},
        id_token=t.id_token,
        access_token=t.access_token,
        refresh_token=refresh,
        expires_at=now + life,
        created_at=now - 60,
        device_key=device_key,
    )


@dataclass
class Answered:
    """One answer as a browser reads it."""

    status: int
    location: str | None
    text: str
    set_cookies: dict[str, SimpleCookie]
    headers: Mapping[str, str]

    def cookie(self, name: str) -> str | None:
        """The value a Set-Cookie gave ``name`` ("" when it was cleared), None when not set."""
        jar = self.set_cookies.get(name)
        return None if jar is None else jar[name].value

    def cleared(self, name: str) -> bool:
        jar = self.set_cookies.get(name)
        return jar is not None and jar[name].value == "" and jar[name]["max-age"] == "0"

    def max_age(self, name: str) -> str:
        return self.set_cookies[name][name]["max-age"]

    @property
    def words(self) -> str:
        """The page's text with tags dropped and white space folded."""
        return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", self.text)).strip()


@dataclass
class AuthHarness:
    cognito: FakeCognito
    store: FlakyStore
    sessions: SessionManager
    flows: SealedStore
    devices: DeviceStore
    client: TestClient
    csrf_key: bytes
    kit: AuthKit
    cookies: OurCookies = field(default=COOKIES)

    async def flow(self, **fields: Any) -> tuple[str, LoginState]:
        """A sign-in in progress, stored as a challenge page finds it: (flow cookie, state)."""
        state = LoginState.new(fields.pop("return_to", "/app"))
        for key, value in fields.items():
            setattr(state, key, value)
        cookie = await self.flows.create(state.to_bytes(), LOGIN_TIMEOUT)
        return cookie, state

    async def login_form(self, path: str = "/login") -> tuple[str, str]:
        """GET the login form as a browser would: (its flow cookie, its CSRF token)."""
        answer = await self.get(path)
        cookie = answer.cookie(self.cookies.flow)
        match = re.search(r'name="csrf" value="([^"]+)"', answer.text)
        assert cookie and match, answer.text
        return cookie, match.group(1)

    async def session(self, record: Session | None = None) -> str:
        return await self.sessions.create(record or session_record())

    def session_csrf(self, session_cookie: str) -> str:
        return csrf.session_token(self.csrf_key, session_cookie)

    async def device(self, username: str = "ann", key: str = "dev-1") -> str:
        """A remembered-device cookie for ``username`` (as ConfirmDevice left it)."""
        record = {
            "username": username,
            "typed": username,
            "device_key": key,
            "device_group_key": "grp-1",
            "device_password": "dpw",
        }
        return await self.devices._sealed.create(json.dumps(record).encode(), 3600)

    def cookie_header(self, **cookies: str | None) -> dict[str, str]:
        names = {"session": self.cookies.session, "flow": self.cookies.flow}
        names["device"] = self.cookies.device
        pairs = [f"{names[k]}={v}" for k, v in cookies.items() if v is not None]
        return {"Cookie": "; ".join(pairs)} if pairs else {}

    async def get(
        self, path: str, *, headers: Mapping[str, str] | None = None, **cookies: str | None
    ) -> Answered:
        return await self._send("GET", path, None, headers, cookies)

    async def post(
        self,
        path: str,
        form: Mapping[str, str],
        *,
        headers: Mapping[str, str] | None = None,
        **cookies: str | None,
    ) -> Answered:
        return await self._send("POST", path, form, headers, cookies)

    async def _send(
        self,
        method: str,
        path: str,
        form: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        cookies: Mapping[str, str | None],
    ) -> Answered:
        sent = {**self.cookie_header(**cookies), **(headers or {})}
        async with self.client.request(
            method,
            PREFIX + path,
            data=dict(form) if form is not None else None,
            headers=sent,
            allow_redirects=False,
        ) as response:
            text = await response.text()
            jars: dict[str, SimpleCookie] = {}
            for header in response.headers.getall("Set-Cookie", []):
                jar: SimpleCookie = SimpleCookie()
                jar.load(header)
                for name in jar:
                    jars[name] = jar
            return Answered(
                status=response.status,
                location=response.headers.get("Location"),
                text=text,
                set_cookies=jars,
                headers=response.headers,
            )


@asynccontextmanager
async def auth_harness(
    cognito: FakeCognito | None = None, *, devices: bool = True
) -> AsyncIterator[AuthHarness]:
    """The auth pages over ``cognito`` and a fresh memory store, on a loopback test server."""
    cognito = cognito or FakeCognito()
    store = FlakyStore()
    secret = b"s" * 32
    sessions = SessionManager(
        store, secret, lifetime=8 * 3600.0, remember_lifetime=REMEMBER_LIFETIME
    )
    flows = SealedStore(store, b"f" * 32, namespace="f")
    device_store = DeviceStore(SealedStore(store, b"d" * 32, namespace="d"), cognito)
    verifier = FakeVerifier()
    csrf_key = b"c" * 32
    routes = AuthRoutes(
        prefix=PREFIX,
        pages=Pages(branding=Branding(product_name="Example"), static_url=f"{PREFIX}/static"),
        sessions=sessions,
        flows=flows,
        prelogin_key=b"p" * 32,
        authenticator=Authenticator(cognito, verifier),
        cognito=cognito,
        refresher=Refresher(cognito, verifier),
        cookies=COOKIES,
        csrf_key=csrf_key,
        login_timeout=LOGIN_TIMEOUT,
        remember_lifetime=REMEMBER_LIFETIME,
        regulator=Regulator(
            store,
            b"r" * 32,
            user=Limit(3, 300, 900),
            ip=Limit(100, 300, 900),
        ),
        devices=device_store if devices else None,
    )
    app = web.Application()
    routes.register(app.router)
    async with TestClient(TestServer(app), cookie_jar=DummyCookieJar()) as client:
        yield AuthHarness(
            cognito, store, sessions, flows, device_store, client, csrf_key, routes.kit
        )
