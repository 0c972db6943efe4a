"""The auth pages' answers as tables: request in, what the browser gets out.

Each row is one request (method, path, form, the cookies the browser holds) and what a fake
Cognito says to it; it asserts what the browser gets: the status, where it is sent, which of
our cookies are set or cleared (and no other), the words on the page, and which Cognito calls
were made. The real AuthRoutes (kit, handlers, Completion, Authenticator, DeviceStore,
Regulator, Refresher) over a memory store on aiohttp's test server; Cognito is the fake at the
client boundary (tests/support/auth_fakes.py). The integration suites prove the same against
the strict double; these pin every row in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from proxy.cognito.client import Device, NewDevice
from tests.support.auth_fakes import (
    BAD_PASSWORD,
    BLOCKED,
    COOKIES,
    REMEMBER_LIFETIME,
    SESSION_EXPIRED,
    TOO_MANY_CODES,
    Answered,
    AuthHarness,
    FakeCognito,
    auth_harness,
    challenge,
    refusal,
    session_record,
    signed_in,
    tokens,
)

CSRF = "{csrf}"  # the sign-in's own CSRF token, filled in when the row runs
SESSION_CSRF = "{session_csrf}"  # the token of forms bound to the session cookie
EVIL = "https://evil.example/steal"
CROSS_SITE = {"Origin": "https://evil.example"}
NAMES = {"session": COOKIES.session, "flow": COOKIES.flow, "device": COOKIES.device}

SMS = {
    "challenge": "SMS_MFA",
    "username": "u-1",
    "cognito_session": "cog-session-1",
    "parameters": {"CODE_DELIVERY_DESTINATION": "+*******0123"},
}
TOTP = {"challenge": "SOFTWARE_TOKEN_MFA", "username": "u-1", "cognito_session": "cog-session-1"}


@dataclass(frozen=True)
class Row:
    name: str
    method: str
    path: str
    status: int
    form: dict[str, str] | None = None
    # "form": the token the login form (GET /login?rd=/app) set; "forged": a cookie we never
    # issued; a dict: a sign-in in progress stored with these fields (return path /app).
    flow: dict[str, Any] | str | None = None
    session: bool = False  # a signed-in browser (ann, sub s-1)
    device: bool = False  # with ann's remembered device
    headers: dict[str, str] = field(default_factory=dict)
    auth_flow: str = "USER_SRP_AUTH"
    cognito: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    location: str | None = None
    says: tuple[str, ...] = ()
    never_says: tuple[str, ...] = ()
    sets: tuple[str, ...] = ()  # our cookies given a new value
    clears: tuple[str, ...] = ()  # our cookies cleared
    calls: tuple[str, ...] = ()  # the Cognito calls made, in order


async def run(row: Row) -> tuple[Answered, dict[str, str], FakeCognito]:
    cognito = FakeCognito(row.auth_flow)
    for name, answers in row.cognito.items():
        cognito.will(name, *answers)
    async with auth_harness(cognito) as h:
        cookies, csrf, session_csrf = await browser(h, row)
        form = None
        if row.form is not None:
            form = {
                k: v.replace(CSRF, csrf).replace(SESSION_CSRF, session_csrf)
                for k, v in row.form.items()
            }
        if row.method == "GET":
            answer = await h.get(row.path, headers=row.headers, **cookies)
        else:
            answer = await h.post(row.path, form or {}, headers=row.headers, **cookies)
    return answer, cookies, cognito


async def browser(h: AuthHarness, row: Row) -> tuple[dict[str, str], str, str]:
    """The cookies the row's browser holds, and the CSRF tokens its forms carry."""
    cookies: dict[str, str] = {}
    csrf = session_csrf = ""
    if row.flow == "form":
        cookies["flow"], csrf = await h.login_form("/login?rd=%2Fapp")
    elif row.flow == "forged":
        cookies["flow"] = "x" * 43
    elif isinstance(row.flow, dict):
        cookies["flow"], state = await h.flow(**row.flow)
        csrf = state.csrf
    if row.session:
        cookies["session"] = await h.session()
        session_csrf = h.session_csrf(cookies["session"])
    if row.device:
        cookies["device"] = await h.device()
    return cookies, csrf, session_csrf


def check(row: Row, answer: Answered, sent: dict[str, str], cognito: FakeCognito) -> None:
    assert answer.status == row.status, answer.words
    assert answer.location == row.location
    for words in row.says:
        assert words in answer.words, answer.words
    for words in row.never_says:
        assert words not in answer.text
    touched = {name for name in NAMES if NAMES[name] in answer.set_cookies}
    assert touched == set(row.sets) | set(row.clears)
    for name in row.sets:
        value = answer.cookie(NAMES[name])
        assert value and value != sent.get(name), name
    for name in row.clears:
        assert answer.cleared(NAMES[name]), name
    assert cognito.names == list(row.calls)


def table(rows: list[Row]) -> Any:
    return pytest.mark.parametrize("row", rows, ids=[r.name for r in rows])


# -- /login -------------------------------------------------------------------------------------

LOGIN = [
    Row(
        "the form: a pre-login cookie, no store record",
        "GET",
        "/login",
        200,
        says=("Sign in", "Enter your username and password to continue."),
        sets=("flow",),
    ),
    Row(
        "a notice after signing out",
        "GET",
        "/login?notice=signed_out",
        200,
        says=("You have been signed out.",),
        sets=("flow",),
    ),
    Row(
        "a notice we never wrote is not shown",
        "GET",
        "/login?notice=%3Cscript%3E",
        200,
        never_says=("<script>", 'id="login-notice"'),
        sets=("flow",),
    ),
    Row(
        "in Japanese when asked",
        "GET",
        "/login?lang=ja",
        200,
        says=("サインイン",),
        sets=("flow",),
    ),
    Row(
        "already signed in: straight back",
        "GET",
        "/login?rd=%2Fapp%2Fx",
        303,
        session=True,
        location="/app/x",
    ),
    Row(
        "already signed in, a foreign return address: home instead",
        "GET",
        f"/login?rd={EVIL}",
        303,
        session=True,
        location="/",
    ),
    Row(
        "right password: signed in, back to the app",
        "POST",
        "/login",
        303,
        form={"username": "ann", "password": "pw", "csrf": CSRF},
        flow="form",
        cognito={"password_login": (signed_in(),)},
        location="/app",
        sets=("session",),
        clears=("flow",),
        calls=("password_login",),
    ),
    Row(
        "a second factor asked: to the challenge page, the sign-in now stored",
        "POST",
        "/login",
        303,
        form={"username": "ann", "password": "pw", "csrf": CSRF},
        flow="form",
        cognito={"password_login": (challenge("SOFTWARE_TOKEN_MFA", user_id="u-1"),)},
        location="/_auth/challenge",
        sets=("flow",),
        calls=("password_login",),
    ),
    Row(
        "wrong password: the form again, the name kept",
        "POST",
        "/login",
        401,
        form={"username": "ann", "password": "nope", "csrf": CSRF},
        flow="form",
        cognito={"password_login": (refusal(*BAD_PASSWORD),)},
        says=("Incorrect username or password.",),
        calls=("password_login",),
    ),
    Row(
        "unknown user: the very same words",
        "POST",
        "/login",
        401,
        form={"username": "nobody", "password": "pw", "csrf": CSRF},
        flow="form",
        cognito={"password_login": (refusal("UserNotFoundException", "User does not exist."),)},
        says=("Incorrect username or password.",),
        never_says=("does not exist",),
        calls=("password_login",),
    ),
    Row(
        "blocked by threat protection: a page saying so",
        "POST",
        "/login",
        403,
        form={"username": "ann", "password": "pw", "csrf": CSRF},
        flow="form",
        cognito={"password_login": (refusal(*BLOCKED),)},
        says=("This sign-in was blocked for security reasons.",),
        never_says=("Incorrect username",),
        calls=("password_login",),
    ),
    Row(
        "not confirmed yet: to the confirm page",
        "POST",
        "/login",
        303,
        form={"username": "ann", "password": "pw", "csrf": CSRF},
        flow="form",
        cognito={"password_login": (refusal("UserNotConfirmedException"),)},
        location="/_auth/confirm",
        sets=("flow",),
        calls=("password_login",),
    ),
    Row(
        "reset required: to the forgot page",
        "POST",
        "/login",
        303,
        form={"username": "ann", "password": "pw", "csrf": CSRF},
        flow="form",
        cognito={"password_login": (refusal("PasswordResetRequiredException"),)},
        location="/_auth/forgot",
        sets=("flow",),
        calls=("password_login",),
    ),
    Row(
        "Cognito throttles: try later",
        "POST",
        "/login",
        429,
        form={"username": "ann", "password": "pw", "csrf": CSRF},
        flow="form",
        cognito={"password_login": (refusal("TooManyRequestsException"),)},
        says=("Too many attempts. Please try again later.",),
        calls=("password_login",),
    ),
    Row(
        "Cognito down: unavailable, said so",
        "POST",
        "/login",
        503,
        form={"username": "ann", "password": "pw", "csrf": CSRF},
        flow="form",
        cognito={"password_login": (refusal("InternalErrorException"),)},
        says=("The service is temporarily unavailable.",),
        calls=("password_login",),
    ),
    Row(
        "no password: asked for both, Cognito not asked",
        "POST",
        "/login",
        400,
        form={"username": "ann", "password": "", "csrf": CSRF},
        flow="form",
        says=("Enter your username and password.",),
    ),
    Row(
        "USER_AUTH: the username alone starts the sign-in",
        "POST",
        "/login",
        303,
        form={"username": "ann", "csrf": CSRF},
        flow="form",
        auth_flow="USER_AUTH",
        cognito={
            "password_login": (
                challenge("SELECT_CHALLENGE", available=("PASSWORD_SRP", "EMAIL_OTP")),
            )
        },
        location="/_auth/challenge",
        sets=("flow",),
        calls=("password_login",),
    ),
    Row(
        "a name longer than any: refused like a wrong password, Cognito not asked",
        "POST",
        "/login",
        401,
        form={"username": "a" * 129, "password": "pw", "csrf": CSRF},
        flow="form",
        says=("Incorrect username or password.",),
    ),
    Row(
        "no CSRF token",
        "POST",
        "/login",
        403,
        form={"username": "ann", "password": "pw"},
        flow="form",
        says=("This form has expired.",),
    ),
    Row(
        "posted from another site",
        "POST",
        "/login",
        403,
        form={"username": "ann", "password": "pw", "csrf": CSRF},
        flow="form",
        headers=CROSS_SITE,
        says=("This form has expired.",),
    ),
    Row(
        "the browser says cross-site",
        "POST",
        "/login",
        403,
        form={"username": "ann", "password": "pw", "csrf": CSRF},
        flow="form",
        headers={"Sec-Fetch-Site": "cross-site"},
    ),
    Row(
        "no sign-in in progress: a fresh form, saying why",
        "POST",
        "/login",
        400,
        form={"username": "ann", "password": "pw", "csrf": "guess"},
        says=("Your sign-in took too long. Please start again.",),
        sets=("flow",),
    ),
    Row(
        "a pre-login cookie we never issued: the same",
        "POST",
        "/login",
        400,
        form={"username": "ann", "password": "pw", "csrf": "guess"},
        flow="forged",
        says=("Your sign-in took too long.",),
        sets=("flow",),
    ),
]


@table(LOGIN)
async def test_login(row: Row) -> None:
    check(row, *await run(row))


async def test_keep_me_signed_in_makes_a_lasting_cookie() -> None:
    async with auth_harness(FakeCognito().will("password_login", signed_in())) as h:
        flow, csrf = await h.login_form()
        form = {"username": "ann", "password": "pw", "csrf": csrf}
        answer = await h.post("/login", {**form, "remember": "1"}, flow=flow)
        assert answer.max_age(COOKIES.session) == str(int(REMEMBER_LIFETIME))
        flow, csrf = await h.login_form()
        answer = await h.post("/login", {**form, "csrf": csrf}, flow=flow)
        assert answer.max_age(COOKIES.session) == ""  # gone with the browser


async def test_a_remembered_device_goes_to_cognito_with_the_password() -> None:
    async with auth_harness(FakeCognito().will("password_login", signed_in())) as h:
        flow, csrf = await h.login_form()
        device = await h.device("ann")
        form = {"username": "ann", "password": "pw", "csrf": csrf}
        assert (await h.post("/login", form, flow=flow, device=device)).status == 303
        assert h.cognito.called("password_login")[0]["device"] == Device("dev-1", "grp-1", "dpw")


async def test_a_device_remembered_for_another_user_stays_out_of_their_sign_in() -> None:
    async with auth_harness(
        FakeCognito().will("password_login", signed_in(sub="s-2", username="bob"))
    ) as h:
        flow, csrf = await h.login_form()
        device = await h.device("ann")
        form = {"username": "bob", "password": "pw", "csrf": csrf}
        assert (await h.post("/login", form, flow=flow, device=device)).status == 303
        assert h.cognito.called("password_login")[0]["device"] is None


async def test_three_wrong_passwords_ban_the_name_without_asking_cognito() -> None:
    async with auth_harness(FakeCognito().will("password_login", refusal(*BAD_PASSWORD))) as h:
        for _ in range(3):
            flow, csrf = await h.login_form()
            form = {"username": "ann", "password": "nope", "csrf": csrf}
            assert (await h.post("/login", form, flow=flow)).status == 401
        flow, csrf = await h.login_form()
        form = {"username": "ANN ", "password": "right", "csrf": csrf}  # the same name, typed so
        answer = await h.post("/login", form, flow=flow)
        assert answer.status == 429
        assert "Too many attempts" in answer.words
        assert 0 < int(answer.headers["Retry-After"]) <= 900
        assert len(h.cognito.called("password_login")) == 3


# -- /challenge and /device ---------------------------------------------------------------------

CHALLENGE = [
    Row(
        "no sign-in in progress: to the login form",
        "GET",
        "/challenge",
        303,
        location="/_auth/login",
    ),
    Row(
        "a form shown but no challenge asked yet",
        "GET",
        "/challenge",
        303,
        flow="form",
        location="/_auth/login",
    ),
    Row(
        "SMS: where the code went",
        "GET",
        "/challenge",
        200,
        flow=SMS,
        says=("Two-step verification", "Enter the code we sent to your phone (+*******0123)."),
    ),
    Row(
        "authenticator app",
        "GET",
        "/challenge",
        200,
        flow=TOTP,
        says=("Enter the 6-digit code from your authenticator app.",),
    ),
    Row(
        "USER_AUTH's emailed code is the sign-in itself, not a second step",
        "GET",
        "/challenge",
        200,
        flow={
            "challenge": "EMAIL_OTP",
            "first_factor": "EMAIL_OTP",
            "username": "u-1",
            "parameters": {"CODE_DELIVERY_DESTINATION": "a***@e***"},
        },
        says=("Enter your code", "Enter the code we sent to your email (a***@e***)."),
        never_says=("Two-step verification",),
    ),
    Row(
        "pick an MFA type: the ones offered, by name",
        "GET",
        "/challenge",
        200,
        flow={
            "challenge": "SELECT_MFA_TYPE",
            "username": "u-1",
            "parameters": {"MFAS_CAN_CHOOSE": '["SMS_MFA","SOFTWARE_TOKEN_MFA"]'},
        },
        says=("Choose how to verify", "Text message (SMS)", "Authenticator app"),
        never_says=("Email",),
    ),
    Row(
        "enrolment: the secret to scan, from AssociateSoftwareToken",
        "GET",
        "/challenge",
        200,
        flow={"challenge": "MFA_SETUP", "username": "u-1", "cognito_session": "cog-session-1"},
        says=("Set up your authenticator app", "JBSWY3DPEHPK3PXP"),
        calls=("associate_software_token",),
    ),
    Row(
        "enrolment with Cognito down: the page cannot be shown",
        "GET",
        "/challenge",
        503,
        flow={"challenge": "MFA_SETUP", "username": "u-1", "cognito_session": "cog-session-1"},
        cognito={"associate_software_token": (refusal("InternalErrorException"),)},
        says=("The service is temporarily unavailable.",),
        calls=("associate_software_token",),
    ),
    Row(
        "a new password, and the attributes Cognito requires by their names",
        "GET",
        "/challenge",
        200,
        flow={
            "challenge": "NEW_PASSWORD_REQUIRED",
            "username": "u-1",
            "parameters": {"requiredAttributes": '["userAttributes.name"]'},
        },
        says=("Choose a new password", "Full name"),
    ),
    Row(
        "a custom question, without the user's internal names",
        "GET",
        "/challenge",
        200,
        flow={
            "challenge": "CUSTOM_CHALLENGE",
            "username": "u-1",
            "parameters": {"question": "What is 2+2?", "USERNAME": "internal-u-1"},
        },
        says=("One more step", "What is 2+2?"),
        never_says=("internal-u-1",),
    ),
    Row(
        "USER_AUTH's factors: one password choice, the others by name",
        "GET",
        "/challenge",
        200,
        flow={
            "challenge": "SELECT_CHALLENGE",
            "username": "u-1",
            "available": ["PASSWORD_SRP", "PASSWORD", "EMAIL_OTP", "WEB_AUTHN"],
        },
        says=("Choose how to verify", "Password", "Email", "Passkey"),
    ),
    Row(
        "passkey",
        "GET",
        "/challenge",
        200,
        flow={"challenge": "WEB_AUTHN", "username": "u-1"},
        says=("Sign in with a passkey",),
    ),
    Row(
        "a challenge no page answers",
        "GET",
        "/challenge",
        502,
        flow={"challenge": "SOME_FUTURE_CHALLENGE", "username": "u-1"},
        says=("This sign-in step cannot be completed here.",),
    ),
    Row(
        "the right code: signed in, back to the app",
        "POST",
        "/challenge",
        303,
        form={"code": "123456", "csrf": CSRF},
        flow=SMS,
        cognito={"respond": (signed_in(),)},
        location="/app",
        sets=("session",),
        clears=("flow",),
        calls=("respond",),
    ),
    Row(
        "the right code on a new device: asked to remember it",
        "POST",
        "/challenge",
        303,
        form={"code": "123456", "csrf": CSRF},
        flow=TOTP,
        cognito={"respond": (signed_in(NewDevice("dev-new", "grp-1")),)},
        location="/_auth/device?rd=%2Fapp&spares=SOFTWARE_TOKEN_MFA",
        sets=("session", "device"),
        clears=("flow",),
        calls=("respond", "confirm_device"),
    ),
    Row(
        "a code that cannot be one: the same page, Cognito not asked",
        "POST",
        "/challenge",
        400,
        form={"code": "12", "csrf": CSRF},
        flow=SMS,
        says=("That code is incorrect.", "Two-step verification"),
    ),
    Row(
        "a wrong code: the same page",
        "POST",
        "/challenge",
        400,
        form={"code": "000000", "csrf": CSRF},
        flow=SMS,
        cognito={"respond": (refusal("CodeMismatchException"),)},
        says=("That code is incorrect.", "Enter the code we sent to your phone"),
        calls=("respond",),
    ),
    Row(
        "too many wrong codes: a fresh sign-in, saying why",
        "POST",
        "/challenge",
        400,
        form={"code": "000000", "csrf": CSRF},
        flow=SMS,
        cognito={"respond": (refusal(*TOO_MANY_CODES),)},
        says=("We could not verify you. Please sign in again.", "Sign in"),
        sets=("flow",),
        calls=("respond",),
    ),
    Row(
        "Cognito's session ran out: a fresh sign-in",
        "POST",
        "/challenge",
        400,
        form={"code": "123456", "csrf": CSRF},
        flow=SMS,
        cognito={"respond": (refusal(*SESSION_EXPIRED),)},
        says=("Your sign-in took too long.",),
        sets=("flow",),
        calls=("respond",),
    ),
    Row(
        "blocked at the second factor",
        "POST",
        "/challenge",
        403,
        form={"code": "123456", "csrf": CSRF},
        flow=SMS,
        cognito={"respond": (refusal(*BLOCKED),)},
        says=("This sign-in was blocked for security reasons.",),
        calls=("respond",),
    ),
    Row(
        "our setup refused: an error page",
        "POST",
        "/challenge",
        503,
        form={"code": "123456", "csrf": CSRF},
        flow=SMS,
        cognito={"respond": (refusal("InvalidParameterException"),)},
        says=("The service is temporarily unavailable.",),
        calls=("respond",),
    ),
    Row(
        "one challenge after another",
        "POST",
        "/challenge",
        303,
        form={"code": "123456", "csrf": CSRF},
        flow=TOTP,
        cognito={"respond": (challenge("NEW_PASSWORD_REQUIRED"),)},
        location="/_auth/challenge",
        calls=("respond",),
    ),
    Row(
        "no CSRF token",
        "POST",
        "/challenge",
        403,
        form={"code": "123456"},
        flow=SMS,
        says=("This form has expired.",),
    ),
    Row(
        "posted from another site",
        "POST",
        "/challenge",
        403,
        form={"code": "123456", "csrf": CSRF},
        flow=SMS,
        headers=CROSS_SITE,
    ),
    Row(
        "remember this device? only for a signed-in browser with a device",
        "GET",
        "/device?rd=%2Fapp",
        303,
        location="/app",
    ),
    Row(
        "remember this device? saying what it spares",
        "GET",
        "/device?rd=%2Fapp&spares=SMS_MFA",
        200,
        session=True,
        device=True,
        says=("Remember this device?", "you will not be asked for a code by text message"),
    ),
    Row(
        "a 'spares' we never wrote: the general words",
        "GET",
        "/device?spares=%3Cb%3Ex",
        200,
        session=True,
        device=True,
        says=("you will not be asked for a verification code after your password",),
        never_says=("<b>x",),
    ),
    Row(
        "yes: Cognito remembers it",
        "POST",
        "/device",
        303,
        form={"remember": "yes", "rd": "/app", "csrf": SESSION_CSRF},
        session=True,
        device=True,
        location="/app",
        calls=("remember_device",),
    ),
    Row(
        "not now: nothing asked of Cognito",
        "POST",
        "/device",
        303,
        form={"remember": "no", "rd": "/app", "csrf": SESSION_CSRF},
        session=True,
        device=True,
        location="/app",
    ),
    Row(
        "a foreign return address after the question: home instead",
        "POST",
        "/device",
        303,
        form={"remember": "no", "rd": EVIL, "csrf": SESSION_CSRF},
        session=True,
        device=True,
        location="/",
    ),
    Row(
        "yes without a session: refused",
        "POST",
        "/device",
        403,
        form={"remember": "yes", "rd": "/app", "csrf": "guess"},
        device=True,
        says=("This form has expired.",),
    ),
    Row(
        "yes with another session's token: refused",
        "POST",
        "/device",
        403,
        form={"remember": "yes", "rd": "/app", "csrf": "0" * 64},
        session=True,
        device=True,
    ),
]


@table(CHALLENGE)
async def test_challenge(row: Row) -> None:
    check(row, *await run(row))


async def test_the_same_custom_question_again_says_the_answer_was_not_accepted() -> None:
    question = {"question": "What is 2+2?"}
    again = challenge("CUSTOM_CHALLENGE", session="cog-session-2", **question)
    async with auth_harness(FakeCognito().will("respond", again)) as h:
        flow, state = await h.flow(
            challenge="CUSTOM_CHALLENGE", username="u-1", parameters=question
        )
        answer = await h.post("/challenge", {"answer": "5", "csrf": state.csrf}, flow=flow)
        assert (answer.status, answer.location) == (303, "/_auth/challenge")
        page = await h.get("/challenge", flow=flow)
        assert page.status == 400
        assert "That answer was not accepted." in page.words
        assert "What is 2+2?" in page.words


async def test_enrolment_answers_with_the_session_the_page_was_shown_with() -> None:
    """AssociateSoftwareToken moved Cognito's session on: VerifySoftwareToken must use it."""
    cognito = FakeCognito().will("respond", signed_in())
    async with auth_harness(cognito) as h:
        flow, state = await h.flow(
            challenge="MFA_SETUP", username="u-1", cognito_session="cog-session-1"
        )
        assert (await h.get("/challenge", flow=flow)).status == 200
        answer = await h.post("/challenge", {"code": "123456", "csrf": state.csrf}, flow=flow)
        assert answer.status == 303
        assert cognito.called("verify_software_token") == [
            {"session": "cog-session-2", "code": "123456"}
        ]
        assert cognito.called("respond")[0]["session"] == "cog-session-3"


async def test_a_wrong_answer_keeps_the_sign_in_going() -> None:
    """After a wrong code the same sign-in takes the right one."""
    cognito = FakeCognito().will("respond", refusal("CodeMismatchException"), signed_in())
    async with auth_harness(cognito) as h:
        flow, state = await h.flow(**SMS)
        wrong = await h.post("/challenge", {"code": "000000", "csrf": state.csrf}, flow=flow)
        assert wrong.status == 400
        right = await h.post("/challenge", {"code": "123456", "csrf": state.csrf}, flow=flow)
        assert (right.status, right.location) == (303, "/app")
        assert [c["username"] for c in cognito.called("respond")] == ["u-1", "u-1"]


# -- /forgot, /forgot/confirm, /confirm -----------------------------------------------------------

RESET = {"username": "ann", "code_destination": "a***@e***"}
NEW_PASSWORD = {"new_password": "N3w-pass!", "confirm_password": "N3w-pass!"}

RECOVERY = [
    Row(
        "forgot: the form",
        "GET",
        "/forgot",
        200,
        says=("Forgot your password?",),
        sets=("flow",),
    ),
    Row(
        "forgot, sent from sign-in: why",
        "GET",
        "/forgot",
        200,
        flow={"username": "ann", "reason": "reset_required"},
        says=("You need to reset your password before you can sign in.",),
    ),
    Row(
        "forgot: a code sent, on to the reset form",
        "POST",
        "/forgot",
        303,
        form={"username": "ann", "csrf": CSRF},
        flow="form",
        location="/_auth/forgot/confirm",
        sets=("flow",),
        calls=("forgot_password",),
    ),
    Row(
        "forgot for nobody: the very same way (no enumeration)",
        "POST",
        "/forgot",
        303,
        form={"username": "nobody", "csrf": CSRF},
        flow="form",
        cognito={"forgot_password": (refusal("UserNotFoundException"),)},
        location="/_auth/forgot/confirm",
        sets=("flow",),
        calls=("forgot_password",),
    ),
    Row(
        "forgot, throttled: the form again",
        "POST",
        "/forgot",
        429,
        form={"username": "ann", "csrf": CSRF},
        flow="form",
        cognito={"forgot_password": (refusal("LimitExceededException"),)},
        says=("Too many attempts.",),
        calls=("forgot_password",),
    ),
    Row(
        "forgot without a name",
        "POST",
        "/forgot",
        400,
        form={"username": " ", "csrf": CSRF},
        flow="form",
        says=("Please fill in all required fields.",),
    ),
    Row(
        "forgot from another site",
        "POST",
        "/forgot",
        403,
        form={"username": "ann", "csrf": CSRF},
        flow="form",
        headers=CROSS_SITE,
    ),
    Row(
        "reset form without a name: to forgot",
        "GET",
        "/forgot/confirm",
        303,
        flow="form",
        location="/_auth/forgot",
    ),
    Row(
        "reset form: where the code went",
        "GET",
        "/forgot/confirm",
        200,
        flow=RESET,
        says=("If the account exists, we sent a code to a***@e***.",),
    ),
    Row(
        "reset form when Cognito named nowhere",
        "GET",
        "/forgot/confirm",
        200,
        flow={"username": "ann"},
        says=("If the account exists, we sent it a code.",),
    ),
    Row(
        "reset: done, to sign in with a notice and the way back",
        "POST",
        "/forgot/confirm",
        303,
        form={"code": "123456", **NEW_PASSWORD, "csrf": CSRF},
        flow=RESET,
        location="/_auth/login?notice=password_changed&rd=/app",
        calls=("confirm_forgot_password",),
    ),
    Row(
        "reset with a wrong code",
        "POST",
        "/forgot/confirm",
        400,
        form={"code": "000000", **NEW_PASSWORD, "csrf": CSRF},
        flow=RESET,
        cognito={"confirm_forgot_password": (refusal("CodeMismatchException"),)},
        says=("That code is incorrect.",),
        calls=("confirm_forgot_password",),
    ),
    Row(
        "reset with an expired code",
        "POST",
        "/forgot/confirm",
        400,
        form={"code": "123456", **NEW_PASSWORD, "csrf": CSRF},
        flow=RESET,
        cognito={"confirm_forgot_password": (refusal("ExpiredCodeException"),)},
        says=("That code has expired.",),
        calls=("confirm_forgot_password",),
    ),
    Row(
        "reset to a password the policy refuses: which rule",
        "POST",
        "/forgot/confirm",
        400,
        form={
            "code": "123456",
            "new_password": "lower1!",
            "confirm_password": "lower1!",
            "csrf": CSRF,
        },
        flow=RESET,
        cognito={
            "confirm_forgot_password": (
                refusal("InvalidPasswordException", "Password must have uppercase characters"),
            )
        },
        says=("The password needs an uppercase letter.",),
        calls=("confirm_forgot_password",),
    ),
    Row(
        "reset with passwords that differ: Cognito not asked",
        "POST",
        "/forgot/confirm",
        400,
        form={"code": "123456", "new_password": "a", "confirm_password": "b", "csrf": CSRF},
        flow=RESET,
        says=("The passwords do not match.",),
    ),
    Row(
        "reset with no code: Cognito not asked",
        "POST",
        "/forgot/confirm",
        400,
        form={"code": "", **NEW_PASSWORD, "csrf": CSRF},
        flow=RESET,
        says=("That code is incorrect.",),
    ),
    Row(
        "reset after the sign-in expired: a fresh one",
        "POST",
        "/forgot/confirm",
        400,
        form={"code": "123456", **NEW_PASSWORD, "csrf": "guess"},
        says=("Your sign-in took too long.",),
        sets=("flow",),
    ),
    Row(
        "confirm without a name: to sign in",
        "GET",
        "/confirm",
        303,
        flow="form",
        location="/_auth/login",
    ),
    Row(
        "confirm: the form",
        "GET",
        "/confirm",
        200,
        flow={"username": "ann"},
        says=("Confirm your account", "Enter the confirmation code we sent you"),
    ),
    Row(
        "confirm: done, to sign in with a notice",
        "POST",
        "/confirm",
        303,
        form={"code": "123456", "csrf": CSRF},
        flow={"username": "ann"},
        location="/_auth/login?notice=confirmed&rd=/app",
        calls=("confirm_sign_up",),
    ),
    Row(
        "confirm with a wrong code",
        "POST",
        "/confirm",
        400,
        form={"code": "000000", "csrf": CSRF},
        flow={"username": "ann"},
        cognito={"confirm_sign_up": (refusal("CodeMismatchException"),)},
        says=("That code is incorrect.",),
        calls=("confirm_sign_up",),
    ),
    Row(
        "a new code: where it went",
        "POST",
        "/confirm",
        200,
        form={"action": "resend", "csrf": CSRF},
        flow={"username": "ann"},
        says=("We sent a new code to +*******0123.",),
        calls=("resend_confirmation_code",),
    ),
    Row(
        "a new code, throttled",
        "POST",
        "/confirm",
        429,
        form={"action": "resend", "csrf": CSRF},
        flow={"username": "ann"},
        cognito={"resend_confirmation_code": (refusal("LimitExceededException"),)},
        says=("Too many attempts.",),
        calls=("resend_confirmation_code",),
    ),
]


@table(RECOVERY)
async def test_recovery(row: Row) -> None:
    check(row, *await run(row))


async def test_the_reset_goes_to_cognito_for_the_stored_name_not_a_posted_one() -> None:
    async with auth_harness() as h:
        flow, state = await h.flow(**RESET)
        form = {"code": "123 456", **NEW_PASSWORD, "username": "mallory", "csrf": state.csrf}
        assert (await h.post("/forgot/confirm", form, flow=flow)).status == 303
        assert h.cognito.called("confirm_forgot_password") == [
            {"username": "ann", "code": "123456", "new_password": "N3w-pass!"}
        ]
        assert await h.flows.load(flow) is None  # that sign-in is over


# -- /logout ------------------------------------------------------------------------------------

LOGOUT = [
    Row(
        "signed out already: to the login page, saying so",
        "GET",
        "/logout",
        303,
        location="/_auth/login?notice=signed_out",
    ),
    Row(
        "signed out already, with a way back",
        "GET",
        "/logout?rd=%2Fbye",
        303,
        location="/bye",
    ),
    Row(
        "the form: who is signed in (a GET signs nobody out)",
        "GET",
        "/logout",
        200,
        session=True,
        says=("Sign out of Example?", "You are signed in as ann@example.com"),
    ),
    Row(
        "sign out: the cookie cleared, the refresh token revoked",
        "POST",
        "/logout",
        303,
        form={"csrf": SESSION_CSRF},
        session=True,
        location="/_auth/login?notice=signed_out",
        clears=("session",),
        calls=("revoke",),
    ),
    Row(
        "sign out everywhere: GlobalSignOut",
        "POST",
        "/logout",
        303,
        form={"csrf": SESSION_CSRF, "everywhere": "1"},
        session=True,
        location="/_auth/login?notice=signed_out",
        clears=("session",),
        calls=("global_sign_out",),
    ),
    Row(
        "GlobalSignOut fails: this session's refresh token revoked instead",
        "POST",
        "/logout",
        303,
        form={"csrf": SESSION_CSRF, "everywhere": "1"},
        session=True,
        cognito={"global_sign_out": (refusal("InternalErrorException"),)},
        location="/_auth/login?notice=signed_out",
        clears=("session",),
        calls=("global_sign_out", "revoke"),
    ),
    Row(
        "revocation fails: signed out here all the same",
        "POST",
        "/logout",
        303,
        form={"csrf": SESSION_CSRF},
        session=True,
        cognito={"revoke": (refusal("InternalErrorException"),)},
        location="/_auth/login?notice=signed_out",
        clears=("session",),
        calls=("revoke",),
    ),
    Row(
        "sign out to an allowed return path",
        "POST",
        "/logout",
        303,
        form={"csrf": SESSION_CSRF, "rd": "/bye"},
        session=True,
        location="/bye",
        clears=("session",),
        calls=("revoke",),
    ),
    Row(
        "sign out to a foreign address: the login page instead",
        "POST",
        "/logout",
        303,
        form={"csrf": SESSION_CSRF, "rd": EVIL},
        session=True,
        location="/_auth/login?notice=signed_out",
        clears=("session",),
        calls=("revoke",),
    ),
    Row(
        "a forged sign-out: refused, still signed in",
        "POST",
        "/logout",
        403,
        form={"csrf": "0" * 64},
        session=True,
        says=("This form has expired.",),
    ),
    Row(
        "a sign-out posted from another site",
        "POST",
        "/logout",
        403,
        form={"csrf": SESSION_CSRF},
        session=True,
        headers=CROSS_SITE,
    ),
    Row(
        "sign out without a session: nothing to end",
        "POST",
        "/logout",
        303,
        form={},
        location="/_auth/login?notice=signed_out",
        clears=("session",),
    ),
]


@table(LOGOUT)
async def test_logout(row: Row) -> None:
    answer, sent, cognito = await run(row)
    check(row, answer, sent, cognito)
    if row.clears:
        assert answer.headers["Clear-Site-Data"] == '"cache"'


async def test_sign_out_ends_the_session_in_the_store() -> None:
    async with auth_harness() as h:
        cookie = await h.session()
        await h.post("/logout", {"csrf": h.session_csrf(cookie)}, session=cookie)
        assert await h.sessions.load(cookie) is None
        assert h.cognito.called("revoke") == [{"refresh_token": "ref-1"}]


async def test_sign_out_everywhere_ends_every_browser_of_the_user_only() -> None:
    async with auth_harness() as h:
        here, elsewhere = await h.session(), await h.session()
        someone_else = await h.session(session_record("s-2", "bob"))
        form = {"csrf": h.session_csrf(here), "everywhere": "1"}
        assert (await h.post("/logout", form, session=here)).status == 303
        assert await h.sessions.load(here) is None
        assert await h.sessions.load(elsewhere) is None
        assert await h.sessions.load(someone_else) is not None


@pytest.mark.parametrize(
    ("refresh", "calls"),
    [
        # An idle session's access token has expired: refreshed (with the device key the
        # tokens are linked to), then GlobalSignOut with the fresh one.
        (tokens(refresh="ref-2"), ["refresh", "global_sign_out"]),
        # The refresh refused: no live token to be had, the refresh token revoked instead.
        (refusal(*BAD_PASSWORD), ["refresh", "revoke"]),
    ],
    ids=["refreshed", "refresh refused"],
)
async def test_sign_out_everywhere_with_expired_tokens(refresh: Any, calls: list[str]) -> None:
    cognito = FakeCognito().will("refresh", refresh)
    async with auth_harness(cognito) as h:
        cookie = await h.session(session_record(life=-60, device_key="dev-1"))
        form = {"csrf": h.session_csrf(cookie), "everywhere": "1"}
        answer = await h.post("/logout", form, session=cookie)
        assert (answer.status, answer.location) == (303, "/_auth/login?notice=signed_out")
        assert cognito.names == calls
        assert cognito.called("refresh")[0]["device_key"] == "dev-1"
        if "global_sign_out" in calls:
            # GlobalSignOut with the refreshed access token, not the expired one.
            assert cognito.called("global_sign_out") == [{"access_token": refresh.access_token}]
        else:
            assert cognito.called("revoke") == [{"refresh_token": "ref-1"}]


# -- the store out: the 503 page, everywhere but the login form ---------------------------------

OUTAGE = [
    # (row, method, path, the browser's state before the store goes down)
    ("the login form still shows (a signed token, no record)", "GET", "/login", None, 200),
    ("a sign-in posted", "POST", "/login", "form", 503),
    ("a challenge page", "GET", "/challenge", "stored", 503),
    ("a challenge answered", "POST", "/challenge", "stored", 503),
    ("the reset form", "GET", "/forgot/confirm", "stored", 503),
    ("the sign-out form", "GET", "/logout", "session", 503),
    ("a sign-out posted", "POST", "/logout", "session", 503),
]


@pytest.mark.parametrize(
    ("method", "path", "before", "status"),
    [r[1:] for r in OUTAGE],
    ids=[r[0] for r in OUTAGE],
)
async def test_store_outage(method: str, path: str, before: str | None, status: int) -> None:
    async with auth_harness() as h:
        cookies: dict[str, str] = {}
        form: dict[str, str] = {}
        if before == "form":
            cookies["flow"], form["csrf"] = await h.login_form()
            form.update(username="ann", password="pw")
        elif before == "stored":
            cookies["flow"], state = await h.flow(**SMS, code_destination="x")
            form.update(csrf=state.csrf, code="123456")
        elif before == "session":
            cookies["session"] = await h.session()
            form["csrf"] = h.session_csrf(cookies["session"])
        h.store.down = True
        if method == "GET":
            answer = await h.get(path, **cookies)
        else:
            answer = await h.post(path, form, **cookies)
        assert answer.status == status
        if status == 503:
            assert "The service is temporarily unavailable." in answer.words
            assert "Try again" in answer.words
        assert h.cognito.calls == []  # nothing asked of Cognito that could not be kept
