"""Message catalogs and language negotiation for the gate's own pages.

Catalog strings may contain ``{name}`` placeholders, filled by :func:`translate`.
Every language must define exactly the same keys (enforced by the unit tests).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType

DEFAULT_LANGUAGE = "en"
SUPPORTED_LANGUAGES: tuple[str, ...] = ("en", "ja")
# Endonyms: a language switch shows each language in its own script.

_EN: dict[str, str] = {
    # Shared
    "common.cancel": "Cancel",
    "common.continue": "Continue",
    "common.language": "Language",
    "common.show_password": "Show",
    "common.hide_password": "Hide",
    "common.show_password_label": "Show password",
    "common.hide_password_label": "Hide password",
    "common.please_wait": "Please wait…",
    "common.home": "Go to home page",
    # Login
    "login.title": "Sign in",
    "login.heading": "Sign in",
    "login.subheading": "Enter your username and password to continue.",
    # USER_AUTH: the factor (password, code, passkey) is chosen on the next page.
    "login.subheading_username": "Enter your username to continue.",
    "login.next": "Continue",
    "login.username": "Username",
    "login.password": "Password",
    "login.submit": "Sign in",
    "login.forgot": "Forgot your password?",
    "login.remember": "Keep me signed in",
    # Notices (role=status)
    "notice.session_expired": "Your session has expired. Please sign in again.",
    "notice.signed_out": "You have been signed out.",
    "notice.password_changed": "Your password has been changed. Please sign in.",
    "notice.expired_post": (
        "Your session expired, so the form you submitted was not sent. "
        "Sign in, then submit it again."
    ),
    "notice.post_lost": (
        "You were not signed in, so the form was not sent. Sign in, then submit it again."
    ),
    # Logout
    "logout.title": "Sign out",
    "logout.heading": "Sign out of {product}?",
    "logout.signed_in_as": "You are signed in as {user}.",
    "logout.submit": "Sign out",
    "logout.everywhere": "Sign out everywhere",
    "logout.account": "Your account",
    "account.title": "Your account",
    "account.heading": "Your account",
    "account.sessions.heading": "Where you're signed in",
    "account.sessions.lede": "Browsers signed in to this site with your account.",
    "account.sessions.current": "This browser",
    "account.sessions.unknown_browser": "Unknown browser",
    "account.sessions.ip": "IP address",
    "account.sessions.signed_in_at": "Signed in",
    "account.sessions.last_seen": "Last active",
    "account.sessions.end": "Sign out this session",
    "account.sessions.end_others": "Sign out everywhere else",
    "account.sessions.ended": "That session is signed out.",
    "account.sessions.others_ended": "Every other session is signed out.",
    "account.password.heading": "Password",
    "account.password.rules": "A new password needs:",
    "account.password.rule.length": "at least {n} characters",
    "account.password.rule.upper": "an uppercase letter",
    "account.password.rule.lower": "a lowercase letter",
    "account.password.rule.digit": "a number",
    "account.password.rule.symbol": "a symbol",
    "account.password.current": "Current password",
    "account.password.submit": "Change password",
    "account.password.wrong_current": "The current password is not right.",
    "account.password.changed": "Your password is changed.",
    "account.devices.heading": "Remembered devices",
    "account.devices.lede": (
        "Devices that can sign in without the second step. "
        "Forget one to be asked for it again there."
    ),
    "account.devices.unnamed": "Unnamed device",
    "account.devices.last_signed_in": "Last sign-in",
    "account.devices.forget": "Forget this device",
    "account.devices.forgotten": "That device is forgotten.",
    "account.devices.unavailable": "Your devices cannot be shown right now.",
    # Account: profile
    "account.profile.heading": "Profile",
    "account.profile.save": "Save",
    "account.profile.saved": "Your profile is saved.",
    "account.profile.unavailable": "Your profile cannot be shown right now.",
    "account.profile.not_set": "Not set",
    "account.profile.verified_badge": "Verified",
    "account.profile.unverified_badge": "Not verified",
    "account.profile.pending": (
        "Waiting for its code: {value}. Until you enter it, the one above stays in effect."
    ),
    "account.profile.code": "Verification code",
    "account.profile.code_hint_pending": "Enter the code we sent to the new one.",
    "account.profile.code_hint_unverified": "Enter the code we sent there, or send a new one.",
    "account.profile.verify": "Verify",
    "account.profile.resend": "Send a new code",
    "account.profile.code_sent": "We sent a code. Enter it below to finish the change.",
    "account.profile.code_resent": "A new code is on its way.",
    "account.profile.verified": "Verified. It is in effect now.",
    "account.profile.new.email": "New email address",
    "account.profile.new.phone_number": "New phone number",
    "account.profile.new_hint.email": "We send a code to it; the change needs that code.",
    "account.profile.new_hint.phone_number": (
        "With the country code, like +81 90 1234 5678. We send a code to it by text message."
    ),
    "account.profile.change.email": "Change email",
    "account.profile.change.phone_number": "Change phone number",
    "account.profile.not_writable": "This cannot be changed here. Please ask the site's team.",
    "account.profile.refused": "That was not accepted. Please check it and try again.",
    "account.profile.alias_taken": "That cannot be used for this account.",
    "account.profile.wrong_code": "That code is not right.",
    "account.profile.expired_code": "That code has expired. Send a new one.",
    "account.profile.too_long": "That is too long (2048 characters at most).",
    "account.profile.bad_characters": "That contains characters that cannot be saved.",
    "account.profile.bad_email": "Enter an email address like name@example.com.",
    "account.profile.bad_phone": (
        "Enter the phone number with its country code, like +81 90 1234 5678."
    ),
    "account.profile.bad_birthdate": "Enter the date as YYYY-MM-DD.",
    "account.profile.attr.name": "Name",
    "account.profile.attr.given_name": "Given name",
    "account.profile.attr.family_name": "Family name",
    "account.profile.attr.middle_name": "Middle name",
    "account.profile.attr.nickname": "Nickname",
    "account.profile.attr.preferred_username": "Preferred username",
    "account.profile.attr.email": "Email",
    "account.profile.attr.phone_number": "Phone number",
    "account.profile.attr.birthdate": "Date of birth",
    "account.profile.attr.gender": "Gender",
    "account.profile.attr.locale": "Language",
    "account.profile.attr.zoneinfo": "Time zone",
    "account.profile.attr.address": "Address",
    "account.profile.attr.website": "Website",
    "account.profile.attr.profile": "Profile page",
    "account.profile.attr.picture": "Picture URL",
    # Account: step-up (re-authentication)
    "reauth.title": "Confirm it's you",
    "reauth.heading": "Confirm it's you",
    "reauth.message": "Enter your password again to continue.",
    "reauth.message_username": "Continue to sign in again.",
    "reauth.account": "To change how you sign in, confirm it's you first.",
    "reauth.mfa": "This page needs a sign-in with a second step (a code or a passkey).",
    "reauth.post_lost": ("What you sent was not sent: confirm it's you, then send it again."),
    "reauth.submit": "Continue",
    "reauth.not_you": "Not you? Sign out",
    "reauth.account_banner": (
        "Changing your password, email, phone, second step or passkeys asks for your "
        "password again first."
    ),
    "reauth.account_banner_link": "Confirm it's you now",
    # Account: gallery (wording its screenshots found wrong)
    "reauth.wrong_password": "Incorrect password.",
    "error.reauth_other_user": (
        "That was a different account. For your safety, this browser is signed out."
    ),
    "error.reauth_mfa_missing": (
        "This page needs a sign-in with a second step, and your account has none. Add an "
        "authenticator app on your account page, then try again."
    ),
    # Account: methods
    "account.methods.heading": "Two-step verification",
    "account.methods.lede": (
        "After your password, a second step proves it's you: a code from an authenticator "
        "app, or one we send by text message or email."
    ),
    "account.methods.none_on": "No second step is turned on: your password alone signs you in.",
    "account.methods.on": "On",
    "account.methods.off": "Off",
    "account.methods.preferred": "Preferred",
    "account.methods.make_preferred": "Make preferred",
    "account.methods.turn_on": "Turn on",
    "account.methods.turn_off": "Turn off",
    "account.methods.totp_start": "Set up an authenticator app",
    "account.methods.totp_replace": "Move to another app",
    "account.methods.totp_remove": "Remove",
    "account.methods.totp_cancel": "Cancel setup",
    "account.methods.totp_added": "Your authenticator app is set up.",
    "account.methods.totp_removed": "The authenticator app is removed.",
    "account.methods.totp_cancelled": "Authenticator app setup is cancelled.",
    "account.methods.turned_on": "That second step is turned on.",
    "account.methods.turned_off": "That second step is turned off.",
    "account.methods.made_preferred": "That second step is now your preferred one.",
    "account.methods.enrol_expired": "The setup has ended. Please start again.",
    "account.methods.too_many_codes": "Too many wrong codes. Please start the setup again.",
    "account.methods.not_verified": (
        "Verify your phone number or email address first: codes can only go to a verified one."
    ),
    "account.methods.failed": "That could not be changed right now. Please try again shortly.",
    "account.methods.unavailable": "Your sign-in methods cannot be shown right now.",
    # Account: activity
    "account.activity.heading": "Recent activity",
    "account.activity.lede": (
        "Recent sign-ins to your account, newest first, with the risk Amazon Cognito assessed."
        " If one was not you, say so, then change your password and sign out your other sessions."
    ),
    "account.activity.unavailable": "Your recent activity cannot be shown right now.",
    "account.activity.empty": "No sign-ins are recorded yet.",
    "account.activity.when": "When",
    "account.activity.place": "Location",
    "account.activity.risk": "Risk",
    "account.activity.password": "Password",
    "account.activity.kind.SignIn": "Sign-in",
    "account.activity.kind.SignUp": "Sign-up",
    "account.activity.kind.ForgotPassword": "Password reset",
    "account.activity.kind.PasswordChange": "Password change",
    "account.activity.kind.ResendCode": "Code sent again",
    "account.activity.result.Pass": "succeeded",
    "account.activity.result.Fail": "failed",
    "account.activity.result.InProgress": "not completed",
    "account.activity.risk.Low": "Low",
    "account.activity.risk.Medium": "Medium",
    "account.activity.risk.High": "High",
    "account.activity.blocked": "blocked",
    "account.activity.compromised": "found in a data breach",
    "account.activity.not_me": "This wasn't me",
    "account.activity.reported_badge": "Reported: not you",
    "account.activity.reported": (
        "Thank you: that sign-in is reported as not you. Change your password now, then sign out"
        " your other sessions."
    ),
    "account.activity.gone": "That sign-in is not in your recent activity.",
    # Account: passkeys
    "account.passkeys.heading": "Passkeys",
    "account.passkeys.lede": (
        "Sign in with your fingerprint, face, screen lock or security key instead of a password."
    ),
    "account.passkeys.none": "You have no passkeys yet.",
    "account.passkeys.unnamed": "Passkey",
    "account.passkeys.kind": "Kind",
    "account.passkeys.kind.platform": "Built into a device",
    "account.passkeys.kind.roaming": "Security key or phone",
    "account.passkeys.created": "Added",
    "account.passkeys.delete": "Delete",
    "account.passkeys.add": "Add a passkey",
    "account.passkeys.noscript": (
        "Adding a passkey needs JavaScript, which is off in this browser. "
        "Your passkeys can still be deleted here."
    ),
    "account.passkeys.unsupported": "This browser cannot create passkeys.",
    "account.passkeys.added": "Your passkey is added. You can sign in with it now.",
    "account.passkeys.deleted": "That passkey is deleted.",
    "account.passkeys.list_unavailable": "Your passkeys cannot be shown right now.",
    "account.passkeys.unavailable": "Passkeys cannot be changed right now. Please try again later.",
    "account.passkeys.failed": "The passkey could not be added. Please try again.",
    "account.passkeys.expired": "Adding the passkey took too long. Please start again.",
    "account.passkeys.not_supported": (
        "This passkey cannot be used here, or it is already added. Try another one."
    ),
    "account.passkeys.limit": "You have as many passkeys as allowed. Delete one to add another.",
    "account.passkeys.wrong_site": "The passkey was made for another site. Please start again.",
    "account.passkeys.not_offered": "Passkeys are not offered for this account.",
    "account.passkeys.register.heading": "Add a passkey",
    "account.passkeys.register.lede": (
        "Follow your browser's prompt to save a passkey on this device or on a security key."
    ),
    "account.passkeys.register.button": "Create passkey",
    "account.passkeys.register.failed": "No passkey was created. Please try again.",
    "account.passkeys.register.exists": (
        "This device or security key already holds a passkey for your account."
    ),
    # Inline errors (role=alert)
    "error.bad_credentials": "Incorrect username or password.",
    "error.missing_fields": "Enter your username and password.",
    "error.generic": "Something went wrong. Please try again.",
    "error.too_many": "Too many attempts. Please try again later.",
    "error.unavailable": "The service is temporarily unavailable. Please try again shortly.",
    "challenge.unsupported": "This sign-in step is not supported yet.",
    "error.flow_expired": "Your sign-in took too long. Please start again.",
    "error.csrf": "This form has expired. Please try again.",
    "error.csrf.heading": "This page has expired",
    "error.bad_request": "The request was not valid. Please try again.",
    "error.user_not_confirmed": "Your account has not been confirmed yet.",
    "error.password_reset_required": "You need to reset your password before you can sign in. "
    "This happens when an administrator asks for it, or when your password was found in a data "
    "breach elsewhere: choose one you do not use anywhere else.",
    "error.sign_in_blocked": "This sign-in was blocked for security reasons. If it was you, "
    "contact your administrator or help desk; trying again now will not help.",
    "error.invalid_code": "That code is incorrect. Please try again.",
    "error.code_expired": "That code has expired. Please request a new one.",
    "error.password_mismatch": "The passwords do not match.",
    "error.password_policy": "That password does not meet the requirements.",
    "error.required_field": "Please fill in all required fields.",
    # Error page
    "error.title": "Error",
    "error.status": "Error {status}",
    "error.try_again": "Try again",
    "status.400": "Bad request",
    "status.400.message": "The request could not be understood. Please try again.",
    "status.401": "Sign-in required",
    "status.401.message": "Please sign in to continue.",
    "status.403": "Forbidden",
    "status.403.message": "You do not have permission to access this page.",
    "status.404": "Not found",
    "status.404.message": "The page you are looking for does not exist.",
    "status.408": "Request timeout",
    "status.408.message": "The request took too long to arrive. Please try again.",
    "status.413": "Request too large",
    "status.413.message": "The submitted form was too large.",
    "status.429": "Too many requests",
    "status.429.message": "Too many attempts. Please try again later.",
    "status.500": "Something went wrong",
    "status.500.message": "Something went wrong. Please try again.",
    "status.501": "Not supported",
    "status.501.message": "This sign-in step is not supported yet.",
    "status.502": "Bad gateway",
    "status.502.message": (
        "The application could not be reached or sent an invalid response. Please try again."
    ),
    "status.503": "Service unavailable",
    "status.503.message": "The service is temporarily unavailable. Please try again shortly.",
    "status.504": "Gateway timeout",
    "status.504.message": "The application took too long to respond. Please try again.",
    # Challenge steps (NEW_PASSWORD_REQUIRED, MFA, ...)
    "challenge.title": "Verify your identity",
    "challenge.submit": "Continue",
    "challenge.verify": "Verify",
    "challenge.start_over": "Start over",
    "challenge.new_password.heading": "Choose a new password",
    "challenge.new_password.message": "You need to set a new password before you continue.",
    "challenge.new_password.label": "New password",
    "challenge.new_password.confirm_label": "Confirm new password",
    "challenge.mfa.heading": "Two-step verification",
    "challenge.code.heading": "Enter your code",
    "challenge.mfa.sms_message": "Enter the code we sent to your phone ({destination}).",
    "challenge.mfa.email_message": "Enter the code we sent to your email ({destination}).",
    "challenge.mfa.totp_message": "Enter the 6-digit code from your authenticator app.",
    "challenge.mfa.code_label": "Verification code",
    "challenge.select.heading": "Choose how to verify",
    "challenge.select.message": "Choose how you want to confirm it's you.",
    "challenge.setup.heading": "Set up your authenticator app",
    "challenge.setup.message": (
        "Scan the QR code with an authenticator app, then enter the 6-digit code it shows."
    ),
    "challenge.setup.qr_alt": "QR code to add this account to an authenticator app",
    "challenge.setup.manual": "Can't scan it? Enter this key in the app instead:",
    "challenge.custom.heading": "One more step",
    "challenge.custom.message": "Answer the question below to continue.",
    "challenge.custom.answer_label": "Your answer",
    "factor.SMS_MFA": "Text message (SMS)",
    "factor.SMS_OTP": "Text message (SMS)",
    "factor.EMAIL_OTP": "Email",
    "factor.SOFTWARE_TOKEN_MFA": "Authenticator app",
    "factor.PASSWORD": "Password",
    "factor.PASSWORD_SRP": "Password",
    "factor.WEB_AUTHN": "Passkey",
    "attribute.email": "Email address",
    "attribute.phone_number": "Phone number",
    "attribute.name": "Full name",
    "attribute.given_name": "First name",
    "attribute.family_name": "Last name",
    "attribute.nickname": "Nickname",
    "attribute.preferred_username": "Preferred username",
    "attribute.birthdate": "Date of birth",
    "error.unsupported_challenge": (
        "This sign-in step cannot be completed here. Please contact your administrator."
    ),
    "error.challenge_failed": "We could not verify you. Please sign in again.",
    "error.answer_rejected": "That answer was not accepted. Please try again.",
    "error.passkey_failed": "The passkey could not be used. Please try again.",
    "challenge.select.or": "or",
    "challenge.passkey.heading": "Sign in with a passkey",
    "challenge.passkey.message": "Use the passkey saved on this device or your security key.",
    "challenge.passkey.button": "Use passkey",
    "challenge.passkey.other": "Use another method",
    "challenge.passkey.noscript": (
        "Passkeys need JavaScript. Turn it on, or start over and choose another method."
    ),
    "challenge.passkey.unsupported": (
        "This browser cannot use passkeys. Start over and choose another method."
    ),
    "error.password_policy.length": "That password is too short.",
    "error.password_policy.upper": "The password needs an uppercase letter.",
    "error.password_policy.lower": "The password needs a lowercase letter.",
    "error.password_policy.digit": "The password needs a number.",
    "error.password_policy.symbol": "The password needs a symbol.",
    "notice.confirmed": "Your account is confirmed. Please sign in.",
    # Forgot password
    "forgot.title": "Reset password",
    "forgot.heading": "Forgot your password?",
    "forgot.message": "Enter your username and we will send you a code to reset your password.",
    "forgot.submit": "Send code",
    "forgot.back": "Back to sign in",
    "forgot.reset_heading": "Choose a new password",
    "forgot.sent_to": "If the account exists, we sent a code to {destination}.",
    "forgot.sent_if_exists": "If the account exists, we sent it a code.",
    "forgot.code_label": "Code",
    "forgot.reset_submit": "Reset password",
    # Confirm sign-up
    "confirm.title": "Confirm your account",
    "confirm.heading": "Confirm your account",
    "confirm.message": "Enter the confirmation code we sent you when you signed up.",
    "confirm.code_label": "Confirmation code",
    "confirm.submit": "Confirm",
    "confirm.resend": "Send a new code",
    "confirm.resent": "We sent a new code to {destination}.",
    # Remember this device
    "device.title": "Remember this device",
    "device.heading": "Remember this device?",
    "device.message": (
        "Next time you sign in on this device, you will not be asked for a verification code "
        "after your password."
    ),
    "device.message.SOFTWARE_TOKEN_MFA": (
        "Next time you sign in on this device, you will not be asked for a code from your "
        "authenticator app after your password."
    ),
    "device.message.SMS_MFA": (
        "Next time you sign in on this device, you will not be asked for a code by text "
        "message after your password."
    ),
    "device.message.EMAIL_OTP": (
        "Next time you sign in on this device, you will not be asked for a code by email "
        "after your password."
    ),
    "device.yes": "Remember this device",
    "device.no": "Not now",
}

_JA: dict[str, str] = {
    "common.cancel": "キャンセル",
    "common.continue": "続行",
    "common.language": "言語",
    "common.show_password": "表示",
    "common.hide_password": "隠す",
    "common.show_password_label": "パスワードを表示",
    "common.hide_password_label": "パスワードを隠す",
    "common.please_wait": "お待ちください…",
    "common.home": "ホームページへ移動",
    "login.title": "サインイン",
    "login.heading": "サインイン",
    "login.subheading": "続行するには、ユーザー名とパスワードを入力してください。",
    "login.subheading_username": "続行するには、ユーザー名を入力してください。",
    "login.next": "次へ",
    "login.username": "ユーザー名",
    "login.password": "パスワード",
    "login.submit": "サインイン",
    "login.forgot": "パスワードをお忘れですか?",
    "login.remember": "サインインしたままにする",
    "notice.session_expired": "セッションの有効期限が切れました。もう一度サインインしてください。",
    "notice.signed_out": "サインアウトしました。",
    "notice.password_changed": "パスワードを変更しました。サインインしてください。",
    "notice.expired_post": (
        "セッションの有効期限が切れたため、フォームは送信されませんでした。"
        "サインインしてから、もう一度送信してください。"
    ),
    "notice.post_lost": (
        "サインインしていなかったため、フォームは送信されませんでした。"
        "サインインしてから、もう一度送信してください。"
    ),
    "logout.title": "サインアウト",
    "logout.heading": "{product} からサインアウトしますか?",
    "logout.signed_in_as": "{user} としてサインインしています。",
    "logout.submit": "サインアウト",
    "logout.everywhere": "すべての端末からサインアウト",
    "logout.account": "アカウント",
    "account.title": "アカウント",
    "account.heading": "アカウント",
    "account.sessions.heading": "サインイン中の端末",
    "account.sessions.lede": "このアカウントでこのサイトにサインインしているブラウザです。",
    "account.sessions.current": "このブラウザ",
    "account.sessions.unknown_browser": "不明なブラウザ",
    "account.sessions.ip": "IP アドレス",
    "account.sessions.signed_in_at": "サインイン日時",
    "account.sessions.last_seen": "最終アクセス",
    "account.sessions.end": "このセッションをサインアウト",
    "account.sessions.end_others": "他のすべての端末からサインアウト",
    "account.sessions.ended": "そのセッションをサインアウトしました。",
    "account.sessions.others_ended": "他のすべてのセッションをサインアウトしました。",
    "account.password.heading": "パスワード",
    "account.password.rules": "新しいパスワードの要件:",
    "account.password.rule.length": "{n} 文字以上",
    "account.password.rule.upper": "大文字を含む",
    "account.password.rule.lower": "小文字を含む",
    "account.password.rule.digit": "数字を含む",
    "account.password.rule.symbol": "記号を含む",
    "account.password.current": "現在のパスワード",
    "account.password.submit": "パスワードを変更",
    "account.password.wrong_current": "現在のパスワードが正しくありません。",
    "account.password.changed": "パスワードを変更しました。",
    "account.devices.heading": "記憶済みのデバイス",
    "account.devices.lede": (
        "2 段階目の確認なしでサインインできるデバイスです。"
        "削除すると、そのデバイスでは再び確認を求められます。"
    ),
    "account.devices.unnamed": "名前のないデバイス",
    "account.devices.last_signed_in": "最終サインイン",
    "account.devices.forget": "このデバイスを削除",
    "account.devices.forgotten": "そのデバイスを削除しました。",
    "account.devices.unavailable": "現在、デバイスを表示できません。",
    # Account: profile
    "account.profile.heading": "プロフィール",
    "account.profile.save": "保存",
    "account.profile.saved": "プロフィールを保存しました。",
    "account.profile.unavailable": "現在、プロフィールを表示できません。",
    "account.profile.not_set": "未設定",
    "account.profile.verified_badge": "確認済み",
    "account.profile.unverified_badge": "未確認",
    "account.profile.pending": ("確認コードの入力待ち: {value}。入力するまでは上の値が有効です。"),
    "account.profile.code": "確認コード",
    "account.profile.code_hint_pending": "新しい宛先に送ったコードを入力してください。",
    "account.profile.code_hint_unverified": (
        "そこに送ったコードを入力するか、新しいコードを送ってください。"
    ),
    "account.profile.verify": "確認",
    "account.profile.resend": "新しいコードを送る",
    "account.profile.code_sent": "コードを送りました。下に入力すると変更が完了します。",
    "account.profile.code_resent": "新しいコードを送りました。",
    "account.profile.verified": "確認しました。今から有効です。",
    "account.profile.new.email": "新しいメールアドレス",
    "account.profile.new.phone_number": "新しい電話番号",
    "account.profile.new_hint.email": (
        "このアドレスにコードを送ります。変更にはそのコードが必要です。"
    ),
    "account.profile.new_hint.phone_number": (
        "国番号から入力してください (例: +81 90 1234 5678)。SMS でコードを送ります。"
    ),
    "account.profile.change.email": "メールアドレスを変更",
    "account.profile.change.phone_number": "電話番号を変更",
    "account.profile.not_writable": (
        "ここでは変更できません。サイトの担当者にお問い合わせください。"
    ),
    "account.profile.refused": "受け付けられませんでした。確認してもう一度お試しください。",
    "account.profile.alias_taken": "このアカウントには使えません。",
    "account.profile.wrong_code": "コードが正しくありません。",
    "account.profile.expired_code": "コードの有効期限が切れました。新しいコードを送ってください。",
    "account.profile.too_long": "長すぎます (2048 文字まで)。",
    "account.profile.bad_characters": "保存できない文字が含まれています。",
    "account.profile.bad_email": "name@example.com のようなメールアドレスを入力してください。",
    "account.profile.bad_phone": ("電話番号を国番号から入力してください (例: +81 90 1234 5678)。"),
    "account.profile.bad_birthdate": "日付は YYYY-MM-DD の形で入力してください。",
    "account.profile.attr.name": "名前",
    "account.profile.attr.given_name": "名",
    "account.profile.attr.family_name": "姓",
    "account.profile.attr.middle_name": "ミドルネーム",
    "account.profile.attr.nickname": "ニックネーム",
    "account.profile.attr.preferred_username": "表示用ユーザー名",
    "account.profile.attr.email": "メールアドレス",
    "account.profile.attr.phone_number": "電話番号",
    "account.profile.attr.birthdate": "生年月日",
    "account.profile.attr.gender": "性別",
    "account.profile.attr.locale": "言語",
    "account.profile.attr.zoneinfo": "タイムゾーン",
    "account.profile.attr.address": "住所",
    "account.profile.attr.website": "ウェブサイト",
    "account.profile.attr.profile": "プロフィールページ",
    "account.profile.attr.picture": "画像の URL",
    # Account: step-up (re-authentication)
    "reauth.title": "本人確認",
    "reauth.heading": "本人確認",
    "reauth.message": "続行するには、パスワードをもう一度入力してください。",
    "reauth.message_username": "続行するには、もう一度サインインしてください。",
    "reauth.account": "サインイン方法を変更するには、先に本人確認をしてください。",
    "reauth.mfa": (
        "このページには 2 段階目の確認 (コードまたはパスキー) を伴うサインインが必要です。"
    ),
    "reauth.post_lost": (
        "送信した内容は送られていません。本人確認のあと、もう一度送信してください。"
    ),
    "reauth.submit": "次へ",
    "reauth.not_you": "別の人ですか? サインアウト",
    "reauth.account_banner": (
        "パスワード、メールアドレス、電話番号、2 段階目の確認、パスキーを変更する前に、"
        "パスワードをもう一度お聞きします。"
    ),
    "reauth.account_banner_link": "今すぐ本人確認する",
    # Account: gallery (wording its screenshots found wrong)
    "reauth.wrong_password": "パスワードが正しくありません。",
    "error.reauth_other_user": (
        "別のアカウントでした。安全のため、このブラウザはサインアウトしました。"
    ),
    "error.reauth_mfa_missing": (
        "このページには 2 段階目の確認を伴うサインインが必要ですが、このアカウントには"
        "設定されていません。アカウントページで認証アプリを追加してから、もう一度お試しください。"
    ),
    # Account: methods
    "account.methods.heading": "2 段階認証",
    "account.methods.lede": (
        "パスワードの後にもう 1 段階で本人であることを確認します。"
        "認証アプリのコード、またはテキストメッセージやメールで送るコードを使います。"
    ),
    "account.methods.none_on": (
        "2 段階目は有効になっていません。パスワードだけでサインインできます。"
    ),
    "account.methods.on": "オン",
    "account.methods.off": "オフ",
    "account.methods.preferred": "優先",
    "account.methods.make_preferred": "優先にする",
    "account.methods.turn_on": "オンにする",
    "account.methods.turn_off": "オフにする",
    "account.methods.totp_start": "認証アプリを設定",
    "account.methods.totp_replace": "別のアプリに移す",
    "account.methods.totp_remove": "削除",
    "account.methods.totp_cancel": "設定をやめる",
    "account.methods.totp_added": "認証アプリを設定しました。",
    "account.methods.totp_removed": "認証アプリを削除しました。",
    "account.methods.totp_cancelled": "認証アプリの設定をやめました。",
    "account.methods.turned_on": "その 2 段階目をオンにしました。",
    "account.methods.turned_off": "その 2 段階目をオフにしました。",
    "account.methods.made_preferred": "その 2 段階目を優先にしました。",
    "account.methods.enrol_expired": "設定が終了しました。もう一度始めてください。",
    "account.methods.too_many_codes": (
        "間違ったコードが多すぎます。もう一度設定を始めてください。"
    ),
    "account.methods.not_verified": (
        "先に電話番号またはメールアドレスを確認してください。"
        "コードは確認済みの宛先にしか送れません。"
    ),
    "account.methods.failed": (
        "現在、変更できませんでした。しばらくしてからもう一度お試しください。"
    ),
    "account.methods.unavailable": "現在、サインイン方法を表示できません。",
    # Account: activity
    "account.activity.heading": "最近のアクティビティ",
    "account.activity.lede": (
        "このアカウントへの最近のサインインです(新しい順。Amazon Cognito が判定したリスク付き)。"
        "身に覚えのないものがあれば報告し、パスワードを変更して他のセッションをサインアウトしてください。"
    ),
    "account.activity.unavailable": "最近のアクティビティを今は表示できません。",
    "account.activity.empty": "記録されたサインインはまだありません。",
    "account.activity.when": "日時",
    "account.activity.place": "場所",
    "account.activity.risk": "リスク",
    "account.activity.password": "パスワード",
    "account.activity.kind.SignIn": "サインイン",
    "account.activity.kind.SignUp": "サインアップ",
    "account.activity.kind.ForgotPassword": "パスワードのリセット",
    "account.activity.kind.PasswordChange": "パスワードの変更",
    "account.activity.kind.ResendCode": "コードの再送信",
    "account.activity.result.Pass": "成功",
    "account.activity.result.Fail": "失敗",
    "account.activity.result.InProgress": "未完了",
    "account.activity.risk.Low": "低",
    "account.activity.risk.Medium": "中",
    "account.activity.risk.High": "高",
    "account.activity.blocked": "ブロック済み",
    "account.activity.compromised": "漏洩したパスワードとして検出",
    "account.activity.not_me": "これは自分ではない",
    "account.activity.reported_badge": "報告済み: 本人ではない",
    "account.activity.reported": (
        "ありがとうございます。このサインインを本人ではないと報告しました。"
        "今すぐパスワードを変更し、他のセッションをサインアウトしてください。"
    ),
    "account.activity.gone": "そのサインインは最近のアクティビティにありません。",
    # Account: passkeys
    "account.passkeys.heading": "パスキー",
    "account.passkeys.lede": (
        "パスワードの代わりに、指紋・顔・画面ロック・セキュリティキーでサインインできます。"
    ),
    "account.passkeys.none": "パスキーはまだありません。",
    "account.passkeys.unnamed": "パスキー",
    "account.passkeys.kind": "種類",
    "account.passkeys.kind.platform": "デバイス内蔵",
    "account.passkeys.kind.roaming": "セキュリティキーまたはスマートフォン",
    "account.passkeys.created": "追加日時",
    "account.passkeys.delete": "削除",
    "account.passkeys.add": "パスキーを追加",
    "account.passkeys.noscript": (
        "パスキーの追加には JavaScript が必要ですが、このブラウザーでは無効になっています。"
        "パスキーの削除はこのページでできます。"
    ),
    "account.passkeys.unsupported": "このブラウザーではパスキーを作成できません。",
    "account.passkeys.added": "パスキーを追加しました。次回からこのパスキーでサインインできます。",
    "account.passkeys.deleted": "そのパスキーを削除しました。",
    "account.passkeys.list_unavailable": "現在、パスキーを表示できません。",
    "account.passkeys.unavailable": (
        "現在、パスキーを変更できません。しばらくしてからもう一度お試しください。"
    ),
    "account.passkeys.failed": "パスキーを追加できませんでした。もう一度お試しください。",
    "account.passkeys.expired": (
        "パスキーの追加に時間がかかりすぎました。最初からやり直してください。"
    ),
    "account.passkeys.not_supported": (
        "このパスキーはここでは使えないか、すでに追加されています。別のものをお試しください。"
    ),
    "account.passkeys.limit": (
        "パスキーの数が上限に達しています。追加するには、どれかを削除してください。"
    ),
    "account.passkeys.wrong_site": (
        "このパスキーは別のサイト用に作成されました。最初からやり直してください。"
    ),
    "account.passkeys.not_offered": "このアカウントではパスキーを利用できません。",
    "account.passkeys.register.heading": "パスキーを追加",
    "account.passkeys.register.lede": (
        "ブラウザーの案内に従って、このデバイスまたはセキュリティキーにパスキーを保存してください。"
    ),
    "account.passkeys.register.button": "パスキーを作成",
    "account.passkeys.register.failed": "パスキーは作成されませんでした。もう一度お試しください。",
    "account.passkeys.register.exists": (
        "このデバイスまたはセキュリティキーには、すでにこのアカウントのパスキーがあります。"
    ),
    "error.bad_credentials": "ユーザー名またはパスワードが正しくありません。",
    "error.missing_fields": "ユーザー名とパスワードを入力してください。",
    "error.generic": "問題が発生しました。もう一度お試しください。",
    "error.too_many": "試行回数が多すぎます。しばらくしてからもう一度お試しください。",
    "error.unavailable": (
        "サービスは一時的に利用できません。しばらくしてからもう一度お試しください。"
    ),
    "challenge.unsupported": "このサインイン手順にはまだ対応していません。",
    "error.flow_expired": "サインインに時間がかかりすぎました。最初からやり直してください。",
    "error.csrf": "このフォームの有効期限が切れました。もう一度お試しください。",
    "error.csrf.heading": "このページの有効期限が切れました",
    "error.bad_request": "リクエストが正しくありません。もう一度お試しください。",
    "error.user_not_confirmed": "アカウントの確認がまだ完了していません。",
    "error.password_reset_required": "サインインする前にパスワードをリセットする必要があります。"
    "管理者がリセットを求めた場合や、パスワードがほかのサービスの情報漏えいで見つかった場合に"
    "こうなります。ほかでは使っていないパスワードを選んでください。",
    "error.sign_in_blocked": "セキュリティ上の理由により、このサインインはブロックされました。"
    "ご本人の場合は、管理者またはヘルプデスクにお問い合わせください。"
    "今すぐ再試行しても解決しません。",
    "error.invalid_code": "コードが正しくありません。もう一度お試しください。",
    "error.code_expired": "コードの有効期限が切れました。新しいコードをリクエストしてください。",
    "error.password_mismatch": "パスワードが一致しません。",
    "error.password_policy": "パスワードが要件を満たしていません。",
    "error.required_field": "必須項目をすべて入力してください。",
    "error.title": "エラー",
    "error.status": "エラー {status}",
    "error.try_again": "もう一度試す",
    "status.400": "不正なリクエスト",
    "status.400.message": "リクエストを処理できませんでした。もう一度お試しください。",
    "status.401": "サインインが必要です",
    "status.401.message": "続行するにはサインインしてください。",
    "status.403": "アクセスが拒否されました",
    "status.403.message": "このページにアクセスする権限がありません。",
    "status.404": "ページが見つかりません",
    "status.404.message": "お探しのページは存在しません。",
    "status.408": "リクエストタイムアウト",
    "status.408.message": "リクエストの到着に時間がかかりすぎました。もう一度お試しください。",
    "status.413": "リクエストが大きすぎます",
    "status.413.message": "送信されたフォームが大きすぎます。",
    "status.429": "リクエストが多すぎます",
    "status.429.message": "試行回数が多すぎます。しばらくしてからもう一度お試しください。",
    "status.500": "問題が発生しました",
    "status.500.message": "問題が発生しました。もう一度お試しください。",
    "status.501": "未対応",
    "status.501.message": "このサインイン手順にはまだ対応していません。",
    "status.502": "不正なゲートウェイ応答",
    "status.502.message": (
        "アプリケーションに接続できないか、不正な応答が返されました。もう一度お試しください。"
    ),
    "status.503": "サービス利用不可",
    "status.503.message": (
        "サービスは一時的に利用できません。しばらくしてからもう一度お試しください。"
    ),
    "status.504": "ゲートウェイタイムアウト",
    "status.504.message": (
        "アプリケーションの応答に時間がかかりすぎました。もう一度お試しください。"
    ),
    "challenge.title": "本人確認",
    "challenge.submit": "続行",
    "challenge.verify": "確認",
    "challenge.start_over": "最初からやり直す",
    "challenge.new_password.heading": "新しいパスワードの設定",
    "challenge.new_password.message": "続行するには、新しいパスワードを設定してください。",
    "challenge.new_password.label": "新しいパスワード",
    "challenge.new_password.confirm_label": "新しいパスワード(確認)",
    "challenge.mfa.heading": "2 段階認証",
    "challenge.code.heading": "コードを入力",
    "challenge.mfa.sms_message": "お使いの電話({destination})に送信したコードを入力してください。",
    "challenge.mfa.email_message": "メール({destination})に送信したコードを入力してください。",
    "challenge.mfa.totp_message": "認証アプリに表示されている 6 桁のコードを入力してください。",
    "challenge.mfa.code_label": "確認コード",
    "challenge.select.heading": "確認方法の選択",
    "challenge.select.message": "本人確認の方法を選択してください。",
    "challenge.setup.heading": "認証アプリの設定",
    "challenge.setup.message": (
        "認証アプリで QR コードを読み取り、表示された 6 桁のコードを入力してください。"
    ),
    "challenge.setup.qr_alt": "認証アプリにこのアカウントを追加するための QR コード",
    "challenge.setup.manual": "読み取れない場合は、代わりにこのキーをアプリに入力してください:",
    "challenge.custom.heading": "もう 1 つの手順",
    "challenge.custom.message": "続行するには、以下の質問に答えてください。",
    "challenge.custom.answer_label": "回答",
    "factor.SMS_MFA": "テキストメッセージ(SMS)",
    "factor.SMS_OTP": "テキストメッセージ(SMS)",
    "factor.EMAIL_OTP": "メール",
    "factor.SOFTWARE_TOKEN_MFA": "認証アプリ",
    "factor.PASSWORD": "パスワード",
    "factor.PASSWORD_SRP": "パスワード",
    "factor.WEB_AUTHN": "パスキー",
    "attribute.email": "メールアドレス",
    "attribute.phone_number": "電話番号",
    "attribute.name": "氏名",
    "attribute.given_name": "名",
    "attribute.family_name": "姓",
    "attribute.nickname": "ニックネーム",
    "attribute.preferred_username": "希望するユーザー名",
    "attribute.birthdate": "生年月日",
    "error.unsupported_challenge": (
        "このサインイン手順はここでは完了できません。管理者にお問い合わせください。"
    ),
    "error.challenge_failed": "本人確認ができませんでした。もう一度サインインしてください。",
    "error.answer_rejected": "回答が受け付けられませんでした。もう一度お試しください。",
    "error.passkey_failed": "パスキーを使用できませんでした。もう一度お試しください。",
    "challenge.select.or": "または",
    "challenge.passkey.heading": "パスキーでサインイン",
    "challenge.passkey.message": (
        "このデバイスに保存されたパスキーまたはセキュリティキーを使用します。"
    ),
    "challenge.passkey.button": "パスキーを使用",
    "challenge.passkey.other": "別の方法を使う",
    "challenge.passkey.noscript": (
        "パスキーには JavaScript が必要です。"
        "有効にするか、最初からやり直して別の方法を選択してください。"
    ),
    "challenge.passkey.unsupported": (
        "このブラウザーではパスキーを使用できません。最初からやり直して別の方法を選択してください。"
    ),
    "error.password_policy.length": "パスワードが短すぎます。",
    "error.password_policy.upper": "パスワードには大文字が必要です。",
    "error.password_policy.lower": "パスワードには小文字が必要です。",
    "error.password_policy.digit": "パスワードには数字が必要です。",
    "error.password_policy.symbol": "パスワードには記号が必要です。",
    "notice.confirmed": "アカウントが確認されました。サインインしてください。",
    "forgot.title": "パスワードのリセット",
    "forgot.heading": "パスワードをお忘れですか?",
    "forgot.message": "ユーザー名を入力すると、パスワードをリセットするためのコードを送信します。",
    "forgot.submit": "コードを送信",
    "forgot.back": "サインインに戻る",
    "forgot.reset_heading": "新しいパスワードの設定",
    "forgot.sent_to": "アカウントが存在する場合、{destination} にコードを送信しました。",
    "forgot.sent_if_exists": "アカウントが存在する場合、コードを送信しました。",
    "forgot.code_label": "コード",
    "forgot.reset_submit": "パスワードをリセット",
    "confirm.title": "アカウントの確認",
    "confirm.heading": "アカウントの確認",
    "confirm.message": "サインアップ時に送信した確認コードを入力してください。",
    "confirm.code_label": "確認コード",
    "confirm.submit": "確認",
    "confirm.resend": "新しいコードを送信",
    "confirm.resent": "{destination} に新しいコードを送信しました。",
    "device.title": "このデバイスを記憶",
    "device.heading": "このデバイスを記憶しますか?",
    "device.message": (
        "次回このデバイスでサインインするとき、パスワードの後に確認コードを求められません。"
    ),
    "device.message.SOFTWARE_TOKEN_MFA": (
        "次回このデバイスでサインインするとき、パスワードの後に認証アプリのコードを求められません。"
    ),
    "device.message.SMS_MFA": (
        "次回このデバイスでサインインするとき、パスワードの後にテキストメッセージ(SMS)のコードを"
        "求められません。"
    ),
    "device.message.EMAIL_OTP": (
        "次回このデバイスでサインインするとき、パスワードの後にメールのコードを求められません。"
    ),
    "device.yes": "このデバイスを記憶する",
    "device.no": "今はしない",
}

MESSAGES: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {"en": MappingProxyType(_EN), "ja": MappingProxyType(_JA)}
)


def message(lang: str, key: str) -> str:
    """The raw (unformatted) catalog string: ``lang``, then English, then the key itself."""
    for code in (lang, DEFAULT_LANGUAGE):
        catalog = MESSAGES.get(code)
        if catalog is not None and key in catalog:
            return catalog[key]
    return key


class _KeepMissing(dict[str, str]):
    """Leaves unknown ``{placeholders}`` in place instead of raising."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def translate(lang: str, key: str, **fmt: str) -> str:
    """Look up ``key`` for ``lang`` (fallback English, then the key) and fill placeholders."""
    text = message(lang, key)
    if not fmt:
        return text
    try:
        return text.format_map(_KeepMissing(fmt))
    except (ValueError, IndexError, AttributeError):
        return text


# RFC 9110 §12.5.4: language-range = 1*8ALPHA *("-" 1*8alphanum) / "*"; qvalue has ≤ 3 decimals.
_RANGE_RE = re.compile(r"^(?:\*|[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*)$")
_Q_RE = re.compile(r"^[qQ]=(0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)$")
_MAX_HEADER = 4096
_MAX_ITEMS = 32


def _match(tag: str, supported: Sequence[str]) -> str | None:
    """Exact match first ("pt-br"), then primary subtag ("ja-jp" -> "ja")."""
    lowered = {s.lower(): s for s in supported}
    if tag in lowered:
        return lowered[tag]
    return lowered.get(tag.split("-", 1)[0])


def pick_language(
    accept_language: str | None,
    override: str | None,
    supported: Sequence[str] = SUPPORTED_LANGUAGES,
    default: str = DEFAULT_LANGUAGE,
) -> str:
    """Choose the page language. An explicit ``override`` (query/cookie) wins if supported;
    then the best-q ``Accept-Language`` range; otherwise ``default``. Never raises."""
    if override:
        candidate = override.strip().lower()
        if _RANGE_RE.match(candidate) and candidate != "*":
            found = _match(candidate, supported)
            if found is not None:
                return found
    if not accept_language or len(accept_language) > _MAX_HEADER:
        return default
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate(accept_language.split(",")[:_MAX_ITEMS]):
        parts = [p.strip() for p in item.split(";")]
        tag = parts[0].lower()
        if not tag or not _RANGE_RE.match(tag):
            continue  # skip malformed entries, keep the rest
        q = 1.0
        params = [p for p in parts[1:] if p]
        if params:
            m = _Q_RE.match(params[0].replace(" ", ""))
            if m is None:
                continue
            q = float(m.group(1))
        if q > 0:
            ranked.append((-q, index, tag))
    for _, _, tag in sorted(ranked):
        if tag == "*":
            return default
        found = _match(tag, supported)
        if found is not None:
            return found
    return default
