"""LoginState: one browser's sign-in in progress, kept server-side (sealed in the store behind
the pre-login cookie), never in hidden form fields. A module of its own so that the challenge
table, the flow and the handlers all read it without importing each other."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass, field

# Fields no longer kept; a flow record written before their removal still reads.
_RETIRED = ("challenge_at",)


@dataclass(slots=True)
class LoginState:
    """One browser's sign-in in progress."""

    csrf: str
    return_to: str
    started_at: float
    # The username Cognito knows (USER_ID_FOR_SRP / the challenge's USERNAME): what every
    # later step sends, whatever the browser posts.
    username: str | None = None
    challenge: str | None = None
    cognito_session: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    remember: bool = False  # "keep me signed in" was ticked
    user_id_for_srp: str | None = None
    # USER_AUTH's SELECT_CHALLENGE: the factors Cognito offers.
    available: list[str] = field(default_factory=list)
    # MFA_SETUP: the TOTP secret from AssociateSoftwareToken, shown to this user only.
    totp_secret: str | None = None
    # Forgot password / confirm sign-up: where Cognito says it sent the code (masked).
    code_destination: str | None = None
    # What the user typed at sign-in (maybe an alias); only to match a remembered device.
    typed_username: str | None = None
    # Why a detour page is shown ("reset_required"), for its notice.
    reason: str | None = None
    # Shown on the next challenge page: the same custom challenge came back (wrong answer).
    retry_message: str | None = None
    # USER_AUTH: the factor chosen at SELECT_CHALLENGE ("PASSWORD", "EMAIL_OTP", "SMS_OTP",
    # "WEB_AUTHN"). An emailed code chosen here is the first factor, not a second one.
    first_factor: str | None = None
    # The second factor passed in this sign-in (SOFTWARE_TOKEN_MFA, SMS_MFA, EMAIL_OTP): only
    # then is the device worth remembering, and it is what the device page says it spares.
    second_factor: str | None = None
    # The factors this sign-in has passed so far (session.FACTORS), for the session record.
    factors: list[str] = field(default_factory=list)
    # Re-authentication of a signed-in user (/reauth, step-up): the session it renews (its
    # record hash) and whose it is, both taken from the session cookie server-side when the
    # password is posted, never from a form; and whether a second factor was asked for.
    reauth_record: str | None = None
    reauth_sub: str | None = None
    reauth_mfa: bool = False

    @classmethod
    def new(cls, return_to: str) -> LoginState:
        return cls(csrf=secrets.token_urlsafe(32), return_to=return_to, started_at=time.time())

    def to_bytes(self) -> bytes:
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> LoginState | None:
        try:
            data = json.loads(raw)
            for name in _RETIRED:  # written by an earlier release; a sign-in in progress goes on
                data.pop(name, None)
            return cls(**data)
        except (ValueError, TypeError, AttributeError):
            return None
