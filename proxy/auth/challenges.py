"""One entry per Cognito challenge: the page to show and how its form becomes an answer.

A new challenge is a new entry in :data:`STEPS`. Each step receives the server-side
:class:`~proxy.auth.state.LoginState` (never hidden form fields) and the posted form; it returns
the template context to render, or the ``ChallengeResponses`` to send (``USERNAME`` and
``SECRET_HASH`` are added by the Cognito client from the stored username). Steps that need a
Cognito call of their own (MFA_SETUP's AssociateSoftwareToken / VerifySoftwareToken) do it in
``prepare`` (before the page is shown) or ``before_answer`` (before the challenge is answered).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from proxy.auth import qr

if TYPE_CHECKING:
    from proxy.auth.state import LoginState
    from proxy.cognito.client import AuthResult, CognitoClient, ContextData, Device

# t(key, **placeholders) -> text in the page's language
Translate = Callable[..., str]

MAX_ANSWER = 2048
MAX_CREDENTIAL = 16 * 1024
MAX_PASSWORD = 256
MAX_ATTRIBUTE = 2048
_CODE_RE = re.compile(r"^[0-9A-Za-z-]{4,64}$")
_TOTP_CODE_RE = re.compile(r"[0-9]{6}")
_ATTRIBUTE_RE = re.compile(r"^[A-Za-z0-9_:.-]{1,64}$")
_CUSTOM_TYPE_RE = re.compile(r"^[a-z0-9_-]{1,40}$")
# Challenge parameters that identify the user; never rendered on a custom challenge page.
_PRIVATE_PARAMETERS = frozenset({"USERNAME", "USER_ID_FOR_SRP"})

# Standard attributes → (input type, autocomplete token): NEW_PASSWORD_REQUIRED's required
# attributes and the account page's profile both type them in this way.
ATTRIBUTE_INPUTS: Mapping[str, tuple[str, str]] = {
    "email": ("email", "email"),
    "phone_number": ("tel", "tel"),
    "name": ("text", "name"),
    "given_name": ("text", "given-name"),
    "family_name": ("text", "family-name"),
    "middle_name": ("text", "additional-name"),
    "nickname": ("text", "nickname"),
    "preferred_username": ("text", "username"),
    "birthdate": ("date", "bday"),
    "gender": ("text", "sex"),
    "locale": ("text", "language"),
    "zoneinfo": ("text", "off"),
    "address": ("text", "street-address"),
    "website": ("url", "url"),
    "profile": ("url", "url"),
    "picture": ("url", "photo"),
}


@dataclass(frozen=True)
class Invalid:
    """The form cannot be sent to Cognito; show the same page with this message (i18n key)."""

    message: str


def code_field(
    t: Translate, *, name: str = "code", label: str = "challenge.mfa.code_label"
) -> dict[str, Any]:
    return {
        "name": name,
        "label": t(label),
        "type": "text",
        "autocomplete": "one-time-code",
        "inputmode": "numeric",
    }


def password_fields(t: Translate) -> list[dict[str, Any]]:
    return [
        {
            "name": "new_password",
            "label": t("challenge.new_password.label"),
            "type": "password",
            "autocomplete": "new-password",
        },
        {
            "name": "confirm_password",
            "label": t("challenge.new_password.confirm_label"),
            "type": "password",
            "autocomplete": "new-password",
        },
    ]


def clean_code(value: str | None) -> str | None:
    """A verification code as typed ("123 456" → "123456"), or None when it cannot be one."""
    code = re.sub(r"\s+", "", value or "")
    return code if _CODE_RE.match(code) else None


def totp_code(value: str | None) -> str | None:
    """An authenticator app's code as typed: six digits (VerifySoftwareToken refuses others)."""
    code = clean_code(value)
    return code if code is not None and _TOTP_CODE_RE.fullmatch(code) else None


def new_password_from(form: Mapping[str, str]) -> str | Invalid:
    password = form.get("new_password") or ""
    if not password or len(password) > MAX_PASSWORD:
        return Invalid("error.required_field" if not password else "error.password_policy")
    if password != (form.get("confirm_password") or ""):
        return Invalid("error.password_mismatch")
    return password


def parse_name_list(raw: str | None) -> list[str]:
    """Cognito sends lists (MFAS_CAN_SETUP, requiredAttributes...) as JSON text; accept that,
    or any text of names separated by commas, spaces or brackets."""
    if not raw:
        return []
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    items = [str(v) for v in value] if isinstance(value, list) else re.split(r"[\s,\[\]\"']+", raw)
    return list(dict.fromkeys(item.strip() for item in items if item.strip()))


class ChallengeStep:
    """Base: a page built from the challenge, and the answer built from the form."""

    template: ClassVar[str] = "challenge.html"

    def template_for(self, state: LoginState, exists: Callable[[str], bool]) -> str:
        return self.template

    def context(self, state: LoginState, t: Translate, product: str) -> dict[str, Any]:
        raise NotImplementedError

    def answer(self, state: LoginState, form: Mapping[str, str]) -> dict[str, str] | Invalid:
        raise NotImplementedError

    async def prepare(self, state: LoginState, cognito: CognitoClient) -> bool:
        """Cognito calls needed before the page can be shown; True when ``state`` changed."""
        return False

    async def before_answer(
        self, state: LoginState, cognito: CognitoClient, form: Mapping[str, str]
    ) -> None:
        """Cognito calls needed before the challenge is answered (may raise CognitoError)."""

    # The words for a refused answer Cognito will not take again (the sign-in restarts).
    refused_message: ClassVar[str] = "error.challenge_failed"

    async def respond(
        self,
        state: LoginState,
        cognito: CognitoClient,
        responses: dict[str, str],
        context: ContextData | None,
        device: Device | None,
    ) -> AuthResult:
        """Send the answer (RespondToAuthChallenge, or the Admin one with ContextData)."""
        return await cognito.respond(
            state.challenge or "",
            state.cognito_session,
            responses,
            username=state.username or "",
            context=context,
            device=device,
        )


class CodeStep(ChallengeStep):
    """SMS_MFA, EMAIL_OTP, SOFTWARE_TOKEN_MFA, SMS_OTP: one code, and where it was sent."""

    def __init__(self, response_key: str, message_key: str) -> None:
        self.response_key = response_key
        self.message_key = message_key

    def context(self, state: LoginState, t: Translate, product: str) -> dict[str, Any]:
        destination = state.parameters.get("CODE_DELIVERY_DESTINATION", "")
        # USER_AUTH's emailed or texted code is the whole sign-in, not a second step.
        first = state.challenge == "SMS_OTP" or state.challenge == state.first_factor
        return {
            "heading": t("challenge.code.heading" if first else "challenge.mfa.heading"),
            "message": t(self.message_key, destination=destination),
            "fields": [code_field(t)],
            "submit_label": t("challenge.verify"),
        }

    def answer(self, state: LoginState, form: Mapping[str, str]) -> dict[str, str] | Invalid:
        code = clean_code(form.get("code"))
        if code is None:
            return Invalid("error.invalid_code")
        return {self.response_key: code}


class NewPasswordStep(ChallengeStep):
    """NEW_PASSWORD_REQUIRED: the new password twice, plus the attributes Cognito requires."""

    @staticmethod
    def required_attributes(state: LoginState) -> list[str]:
        names = (
            n.removeprefix("userAttributes.")
            for n in parse_name_list(state.parameters.get("requiredAttributes"))
        )
        return [n for n in names if _ATTRIBUTE_RE.match(n)]

    def context(self, state: LoginState, t: Translate, product: str) -> dict[str, Any]:
        fields = password_fields(t)
        for name in self.required_attributes(state):
            kind, autocomplete = ATTRIBUTE_INPUTS.get(name, ("text", "on"))
            key = f"attribute.{name}"
            label = t(key)
            fields.append(
                {
                    "name": f"userAttributes.{name}",
                    "label": label if label != key else name,
                    "type": kind,
                    "autocomplete": autocomplete,
                }
            )
        return {
            "heading": t("challenge.new_password.heading"),
            "message": t("challenge.new_password.message"),
            "fields": fields,
        }

    def answer(self, state: LoginState, form: Mapping[str, str]) -> dict[str, str] | Invalid:
        password = new_password_from(form)
        if isinstance(password, Invalid):
            return password
        responses = {"NEW_PASSWORD": password}
        for name in self.required_attributes(state):
            value = (form.get(f"userAttributes.{name}") or "").strip()
            if not value or len(value) > MAX_ATTRIBUTE:
                return Invalid("error.required_field")
            responses[f"userAttributes.{name}"] = value
        return responses


class ChoiceStep(ChallengeStep):
    """Pick one option among those Cognito offers (SELECT_MFA_TYPE, SELECT_CHALLENGE)."""

    template = "choice.html"

    def options(self, state: LoginState) -> list[str]:
        raise NotImplementedError

    def context(self, state: LoginState, t: Translate, product: str) -> dict[str, Any]:
        return {
            "heading": t("challenge.select.heading"),
            "message": t("challenge.select.message"),
            "options": [
                {"value": option, "label": _factor_label(t, option)}
                for option in self.options(state)
            ],
        }

    def answer(self, state: LoginState, form: Mapping[str, str]) -> dict[str, str] | Invalid:
        choice = form.get("choice")
        if choice not in self.options(state):
            return Invalid("error.required_field")
        return {"ANSWER": choice}


def _factor_label(t: Translate, factor: str) -> str:
    key = f"factor.{factor}"
    label = t(key)
    return label if label != key else factor


class SelectMfaStep(ChoiceStep):
    def options(self, state: LoginState) -> list[str]:
        return parse_name_list(state.parameters.get("MFAS_CAN_CHOOSE"))


class MfaSetupStep(ChallengeStep):
    """MFA_SETUP: enrol an authenticator app inside our page (AssociateSoftwareToken, a QR
    code rendered here, VerifySoftwareToken), then answer the challenge."""

    template = "mfa_setup.html"

    @staticmethod
    def can_setup(state: LoginState) -> list[str]:
        return parse_name_list(state.parameters.get("MFAS_CAN_SETUP"))

    def supported(self, state: LoginState) -> bool:
        # Absent or unparsable: Cognito offers TOTP enrolment to these clients anyway.
        options = self.can_setup(state)
        return not options or "SOFTWARE_TOKEN_MFA" in options

    async def prepare(self, state: LoginState, cognito: CognitoClient) -> bool:
        if state.totp_secret is not None or not state.cognito_session:
            return False
        secret, session = await cognito.associate_software_token(state.cognito_session)
        state.totp_secret = secret
        state.cognito_session = session or state.cognito_session
        return True

    def context(self, state: LoginState, t: Translate, product: str) -> dict[str, Any]:
        return {
            "heading": t("challenge.setup.heading"),
            "message": t("challenge.setup.message"),
            "secret": state.totp_secret or "",
            "qr_code": totp_qr(product, state.username or "", state.totp_secret or ""),
            "fields": [code_field(t)],
        }

    def answer(self, state: LoginState, form: Mapping[str, str]) -> dict[str, str] | Invalid:
        if totp_code(form.get("code")) is None:
            return Invalid("error.invalid_code")
        return {}

    async def before_answer(
        self, state: LoginState, cognito: CognitoClient, form: Mapping[str, str]
    ) -> None:
        code = totp_code(form.get("code"))
        assert code is not None  # answer() checked it
        session = await cognito.verify_software_token(state.cognito_session, code)
        state.cognito_session = session or state.cognito_session


def totp_qr(issuer: str, username: str, secret: str) -> str:
    """The enrolment QR code as a data: URI (SVG rendered here: no external service, no JS)."""
    return qr.svg_data_uri(qr.otpauth_uri(issuer=issuer, account=username, secret=secret))


class CustomStep(ChallengeStep):
    """CUSTOM_CHALLENGE (Lambda triggers: CAPTCHA, magic codes, step-up): the operator's
    ``custom_<type>.html`` when ChallengeParameters["type"] names one, else a generic page
    built from the public challenge parameters. Posts ``answer``."""

    template = "custom_challenge.html"

    @staticmethod
    def challenge_type(state: LoginState) -> str | None:
        kind = (state.parameters.get("type") or "").strip().lower()
        return kind if _CUSTOM_TYPE_RE.match(kind) else None

    def template_for(self, state: LoginState, exists: Callable[[str], bool]) -> str:
        kind = self.challenge_type(state)
        if kind is not None and exists(f"custom_{kind}.html"):
            return f"custom_{kind}.html"
        return self.template

    def context(self, state: LoginState, t: Translate, product: str) -> dict[str, Any]:
        public = {k: v for k, v in state.parameters.items() if k not in _PRIVATE_PARAMETERS}
        return {
            "heading": t("challenge.custom.heading"),
            "message": t("challenge.custom.message"),
            "challenge_type": self.challenge_type(state),
            "parameters": public,
            "question": public.get("question"),
            "fields": [
                {
                    "name": "answer",
                    "label": t("challenge.custom.answer_label"),
                    "type": "text",
                    "autocomplete": "one-time-code",
                }
            ],
        }

    def answer(self, state: LoginState, form: Mapping[str, str]) -> dict[str, str] | Invalid:
        answer = (form.get("answer") or "").strip()
        if not answer or len(answer) > MAX_ANSWER:
            return Invalid("error.required_field")
        return {"ANSWER": answer}


class SelectChallengeStep(ChoiceStep):
    """USER_AUTH's SELECT_CHALLENGE: the factors the pool allows for this user. A password
    factor is answered on this page (PASSWORD_SRP when offered: the password never leaves
    the proxy); the others lead to their own step (EMAIL_OTP, SMS_OTP, WEB_AUTHN)."""

    template = "select_challenge.html"
    refused_message = "error.bad_credentials"

    def options(self, state: LoginState) -> list[str]:
        offered = [c for c in state.available if c in _FIRST_FACTORS]
        if "PASSWORD_SRP" in offered and "PASSWORD" in offered:
            offered.remove("PASSWORD")  # one "Password" choice, answered with SRP
        return offered

    def context(self, state: LoginState, t: Translate, product: str) -> dict[str, Any]:
        options = self.options(state)
        password = next((o for o in options if o in ("PASSWORD", "PASSWORD_SRP")), None)
        return {
            "heading": t("challenge.select.heading"),
            "message": t("challenge.select.message"),
            "options": [
                {"value": o, "label": _factor_label(t, o)}
                for o in options
                if o not in ("PASSWORD", "PASSWORD_SRP")
            ],
            "password_option": password,
        }

    def answer(self, state: LoginState, form: Mapping[str, str]) -> dict[str, str] | Invalid:
        responses = super().answer(state, form)
        if isinstance(responses, Invalid):
            return responses
        if responses["ANSWER"] in ("PASSWORD", "PASSWORD_SRP"):
            password = form.get("password") or ""
            if not password or len(password) > MAX_PASSWORD:
                return Invalid("error.required_field")
            responses["PASSWORD"] = password
        return responses

    async def respond(
        self,
        state: LoginState,
        cognito: CognitoClient,
        responses: dict[str, str],
        context: ContextData | None,
        device: Device | None,
    ) -> AuthResult:
        chosen = responses["ANSWER"]
        state.first_factor = "PASSWORD" if chosen in ("PASSWORD", "PASSWORD_SRP") else chosen
        if chosen == "PASSWORD_SRP":
            return await cognito.answer_with_password_srp(
                state.cognito_session, state.username or "", responses["PASSWORD"], context
            )
        return await super().respond(state, cognito, responses, context, device)


_FIRST_FACTORS = ("PASSWORD_SRP", "PASSWORD", "WEB_AUTHN", "EMAIL_OTP", "SMS_OTP")


class WebAuthnStep(ChallengeStep):
    """WEB_AUTHN: a passkey through the browser's WebAuthn API. ``webauthn.js`` reads the
    request options from a data- attribute, calls ``navigator.credentials.get`` and posts the
    credential JSON back as ``credential``; without JavaScript the page says so and offers to
    start over with another factor."""

    template = "webauthn.html"

    def context(self, state: LoginState, t: Translate, product: str) -> dict[str, Any]:
        return {
            "heading": t("challenge.passkey.heading"),
            "message": t("challenge.passkey.message"),
            "options_json": state.parameters.get("CREDENTIAL_REQUEST_OPTIONS", "{}"),
        }

    def answer(self, state: LoginState, form: Mapping[str, str]) -> dict[str, str] | Invalid:
        credential = form.get("credential") or ""
        if not credential or len(credential) > MAX_CREDENTIAL:
            return Invalid("error.passkey_failed")
        try:
            parsed = json.loads(credential)
        except ValueError:
            return Invalid("error.passkey_failed")
        if not isinstance(parsed, dict) or not isinstance(parsed.get("response"), dict):
            return Invalid("error.passkey_failed")
        return {"CREDENTIAL": credential}


STEPS: Mapping[str, ChallengeStep] = {
    "NEW_PASSWORD_REQUIRED": NewPasswordStep(),
    "SMS_MFA": CodeStep("SMS_MFA_CODE", "challenge.mfa.sms_message"),
    "EMAIL_OTP": CodeStep("EMAIL_OTP_CODE", "challenge.mfa.email_message"),
    "SOFTWARE_TOKEN_MFA": CodeStep("SOFTWARE_TOKEN_MFA_CODE", "challenge.mfa.totp_message"),
    "SMS_OTP": CodeStep("SMS_OTP_CODE", "challenge.mfa.sms_message"),
    "SELECT_MFA_TYPE": SelectMfaStep(),
    "MFA_SETUP": MfaSetupStep(),
    "CUSTOM_CHALLENGE": CustomStep(),
    "SELECT_CHALLENGE": SelectChallengeStep(),
    "WEB_AUTHN": WebAuthnStep(),
}


def step_for(state: LoginState) -> ChallengeStep | None:
    step = STEPS.get(state.challenge or "")
    if isinstance(step, MfaSetupStep) and not step.supported(state):
        return None
    return step
