"""The account page's pending authenticator-app enrolments: one per session, readable only
with that session's cookie, ended by too many wrong codes."""

from __future__ import annotations

import asyncio

from proxy.auth.account.methods import MAX_WRONG_CODES, TotpEnrolments
from proxy.sessions.memory import MemoryStore
from proxy.settings import AccountSettings

KEY = b"k" * 32
COOKIE = "cookie-of-the-session-that-started-it"
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


async def test_only_the_cookie_and_user_that_started_it_can_read_it() -> None:
    store = MemoryStore()
    enrolments = TotpEnrolments(store, KEY)
    await enrolments.begin(COOKIE, "rec1", "sub-a", SECRET, now=100.0)
    pending = await enrolments.pending(COOKIE, "rec1", "sub-a")
    assert pending is not None and pending.secret == SECRET and pending.started_at == 100.0
    assert await enrolments.pending("another-cookie", "rec1", "sub-a") is None
    assert await enrolments.pending(COOKIE, "rec1", "sub-b") is None
    assert await enrolments.pending(COOKIE, "rec2", "sub-a") is None
    # Moved to another record's key (a store write by someone else): it does not open there.
    raw = await store.get(TotpEnrolments.key("rec1"))
    assert raw is not None and SECRET.encode() not in raw
    await store.set(TotpEnrolments.key("rec2"), raw, 60)
    assert await enrolments.pending(COOKIE, "rec2", "sub-a") is None
    await store.set(TotpEnrolments.key("rec1"), b"garbage", 60)
    assert await enrolments.pending(COOKIE, "rec1", "sub-a") is None


async def test_wrong_codes_end_it_and_a_new_start_counts_afresh() -> None:
    enrolments = TotpEnrolments(MemoryStore(), KEY)
    await enrolments.begin(COOKIE, "rec", "sub", SECRET)
    for n in range(1, MAX_WRONG_CODES + 1):
        assert await enrolments.attempt("rec") == n
        assert await enrolments.pending(COOKIE, "rec", "sub") is not None
    # One more than the limit: the setup is over, whatever Cognito would say.
    assert await enrolments.attempt("rec") == MAX_WRONG_CODES + 1
    assert await enrolments.pending(COOKIE, "rec", "sub") is None
    await enrolments.begin(COOKIE, "rec", "sub", SECRET)
    assert await enrolments.attempt("rec") == 1


async def test_parallel_tries_all_count() -> None:
    enrolments = TotpEnrolments(MemoryStore(), KEY)
    await enrolments.begin(COOKIE, "rec", "sub", SECRET)
    counts = await asyncio.gather(*(enrolments.attempt("rec") for _ in range(20)))
    assert sorted(counts) == list(range(1, 21))  # each try its own number: 5 pass the limit
    assert await enrolments.pending(COOKIE, "rec", "sub") is None


def test_its_keys_end_with_the_session() -> None:
    keys = TotpEnrolments(MemoryStore(), KEY).companions("rec")
    assert keys == (TotpEnrolments.key("rec"), TotpEnrolments.counter_key("rec"))


def test_the_factors_setting_defaults_to_authenticator_apps_and_drops_repeats() -> None:
    assert AccountSettings().mfa_factors == ["SOFTWARE_TOKEN_MFA"]
    twice = AccountSettings(mfa_factors=["SMS_MFA", "EMAIL_OTP", "SMS_MFA"])
    assert twice.mfa_factors == ["SMS_MFA", "EMAIL_OTP"]
