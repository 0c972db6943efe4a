"""Cognito SRP client: known-answer vectors, pycognito as an oracle, and a simulated server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import importlib.util
import inspect
import re
import sys
import types
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pycognito import aws_srp

from proxy.cognito import srp

# --- Known answers from github.com/alexrudd/cognito-srp (cognitosrp_test.go) ------------------

GO_POOL_ID = "eu-west-1_myPool"
GO_SMALL_A = 1234567890
GO_K = 37772559067617796309459009502931177628717927509759535181635788491848250400486
GO_LARGE_A = int(
    "201282145017923726606741475194106092801981728731401783566729741361544168004201564889361951"
    "207457480155181690804887503931055610865059586914576843232437677406055538577507370856912168"
    "890215889564238321973685221636614452915674402815145842443681079121836272926000592301897355"
    "962186917327033513310106496417743316177107446599440122594660282348932780986965010331491874"
    "971914507638053597632500925349397263419152307903552534159836646273353213759758606928834059"
    "456332742124472633230723260940100833581908977890762232361069606566890096621061087180861088"
    "422427001714985764778882204338634194727570161249416263019138961566061956165548139957372331"
    "137757779226058117499761895615248950732521869955509523312110054657218870156397941770186527"
    "673941827860132984417632681481384967512788764452318175135947035114316906609178410340454436"
    "671128714580423861396654726091832872812601776911426105744500577640344769129700165939361255"
    "1419207658913838531096191"
)
GO_KEY_HEX = "d96cde6c95dda17175c1293140c5a81f"
GO_SIGNATURE = "tdvQu/Li/qWl8Nni0aFPs+MwY4rvKZm0kSMrGIMSUHk="
# Intermediate S and u (pad_hex form) for the same inputs, from the Go test of computeHKDF.
GO_HKDF_IKM = (
    "00cf724779a05d41df17a315d188ce565d0bc7a70e6bc4199ad3959a531c6b4ca4b9ac31f639b96391a2f8d28c"
    "7d47d9759fc7a23a59bfb95691147b212b050116cf53fa1a7876ef179003dea92b246bc9584240d3e5a294a158"
    "b12cc92642bbe5c7d854338233f54fd66f10384b3d3e740280017773feb1104696bfe6e0a82ec5ef2fc23fad66"
    "3f5e945e8644c872d05f4ab7961436d0602c961d1619e91b70e451f0769e80b0d6ae80052ed47c3c89f4caae02"
    "ff01917f195b8cbea78f895da7145646e64b63605a7ffd85de351c06a5a5ffb6eee8b392b4d137726468361bbc"
    "f7b4055600002ae7c8c1dd5c545862f1c4c725c01da795afab3221d322104aecd4d1ab74d5e81eb45cbdb52081"
    "b1413a9e8b08e76b961c74cdbdac017d8d22a24860a674a0cd526e8ff8403caac07c0c720636efd83291ae60ff"
    "15cbd0a881f8030495cae0327040855defba70625c78cf27ea50bcaf0322cac01cf753c5a34269e4e329c9cd38"
    "8aada7781cf1c552754a0d2d3ce5fe58198a31b7b0ddc515ad"
)
GO_HKDF_SALT = "0c98b195a479d1a7c70c99dd680f34f5805fe686d0bc716549ff2ed895aa9111"
GO_SECRET_BLOCK = base64.b64encode(b"secretssecrestssecrets").decode()


def go_vector_kwargs() -> dict[str, Any]:
    return {
        "pool_id": GO_POOL_ID,
        "user_id_for_srp": "test",
        "password": "test",
        "secret": srp.secret_from_small_a(GO_SMALL_A),
        "srp_b_hex": f"{1234567890:x}",
        "salt_hex": f"{1234567890:x}",
    }


def test_group_constants_match_go_client() -> None:
    assert int(aws_srp.N_HEX, 16) == srp.N
    assert srp.G == 2
    assert srp.K == GO_K


def test_large_a_matches_go_client() -> None:
    secret = srp.secret_from_small_a(GO_SMALL_A)
    assert secret.large_a == GO_LARGE_A
    assert srp.srp_a_hex(secret) == f"{GO_LARGE_A:x}"


def test_calculate_u_matches_go_client() -> None:
    u = srp.calculate_u(
        int("6D797365637265746861736841", 16), int("6D797365637265746861736842", 16)
    )
    assert u == 39743664823761398449876968619416475559594078623923024211668626611155104513539


def test_hkdf_matches_go_client() -> None:
    key = srp.compute_hkdf(bytes.fromhex(GO_HKDF_IKM), bytes.fromhex(GO_HKDF_SALT))
    assert key.hex() == GO_KEY_HEX


def test_intermediate_s_and_u_match_go_client() -> None:
    secret = srp.secret_from_small_a(GO_SMALL_A)
    u = srp.calculate_u(secret.large_a, 1234567890)
    assert srp.pad_hex(u) == GO_HKDF_SALT


def test_authentication_key_matches_go_client() -> None:
    key = srp.password_authentication_key(**go_vector_kwargs())
    assert key.hex() == GO_KEY_HEX


def test_password_claim_signature_matches_go_client() -> None:
    timestamp = srp.cognito_timestamp(datetime(2018, 7, 10, 11, 1, 0, tzinfo=UTC))
    assert timestamp == "Tue Jul 10 11:01:00 UTC 2018"
    signature = srp.password_claim_signature(
        **go_vector_kwargs(), secret_block_b64=GO_SECRET_BLOCK, timestamp=timestamp
    )
    assert signature == GO_SIGNATURE
    # Each input matters: change any one and the signature changes.
    variants: list[dict[str, Any]] = [
        {"password": "tesT"},
        {"user_id_for_srp": "test2"},
        {"pool_id": "eu-west-1_myPool2"},
        {"salt_hex": "499602d3"},
        {"srp_b_hex": "499602d3"},
        {"secret": srp.secret_from_small_a(GO_SMALL_A + 1)},
    ]
    for change in variants:
        kwargs = go_vector_kwargs() | change
        other = srp.password_claim_signature(
            **kwargs, secret_block_b64=GO_SECRET_BLOCK, timestamp=timestamp
        )
        assert other != GO_SIGNATURE, change
    assert (
        srp.password_claim_signature(
            **go_vector_kwargs(),
            secret_block_b64=GO_SECRET_BLOCK,
            timestamp="Tue Jul 10 11:01:01 UTC 2018",
        )
        != GO_SIGNATURE
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0x123ABC, "123abc"),  # Go Test_padHex
        (0x123ABCD, "0123abcd"),
        (0x8123ABCD, "008123abcd"),
        (0, "00"),  # Amplify getPaddedHex table (from Java BigInteger.toByteArray)
        (1, "01"),
        (127, "7f"),
        (128, "0080"),
        (255, "00ff"),
        (256, "0100"),
    ],
)
def test_pad_hex_vectors(value: int, expected: str) -> None:
    assert srp.pad_hex(value) == expected


@given(st.integers(min_value=0, max_value=2**3100))
def test_pad_hex_is_java_to_byte_array(value: int) -> None:
    java = value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True).hex()
    assert srp.pad_hex(value) == java
    assert srp.pad_hex(value) == aws_srp.pad_hex(value)


def test_pad_hex_rejects_negative() -> None:
    with pytest.raises(ValueError):
        srp.pad_hex(-1)


# --- pycognito as an independent implementation ----------------------------------------------


def pycognito_for(secret: srp.SrpSecret, **kwargs: Any) -> aws_srp.AWSSRP:
    # A dummy client keeps pycognito from building a boto3 client (no network, no creds).
    helper = aws_srp.AWSSRP(client=object(), client_id="client", **kwargs)
    helper.small_a_value = secret.small_a
    helper.large_a_value = secret.large_a
    return helper


printable = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)
server_b = st.integers(min_value=1, max_value=srp.N - 1)
# Canonical hex (no leading zeros) is what Cognito sends; for it pycognito's string-based
# salt padding and Amplify's integer-based one agree.
salts = st.integers(min_value=1, max_value=2**256)
secret_blocks = st.binary(min_size=1, max_size=200)
small_as = st.integers(min_value=1, max_value=2**1024 - 1)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    user=printable,
    password=printable,
    pool=st.from_regex(r"[a-z]{2}-[a-z]+-[1-9]_[0-9A-Za-z]{1,12}", fullmatch=True),
    small_a=small_as,
    large_b=server_b,
    salt=salts,
    block=secret_blocks,
    when=st.datetimes(timezones=st.just(UTC)),
)
def test_signature_matches_pycognito(
    user: str,
    password: str,
    pool: str,
    small_a: int,
    large_b: int,
    salt: int,
    block: bytes,
    when: datetime,
) -> None:
    secret = srp.secret_from_small_a(small_a)
    timestamp = srp.cognito_timestamp(when)
    helper = pycognito_for(secret, username=user, password=password, pool_id=pool)
    helper.get_cognito_formatted_timestamp = lambda _now: timestamp
    block_b64 = base64.b64encode(block).decode()
    expected = helper.process_challenge(
        {
            "USER_ID_FOR_SRP": user,
            "SALT": f"{salt:x}",
            "SRP_B": f"{large_b:x}",
            "SECRET_BLOCK": block_b64,
        },
        {"USERNAME": user},
    )
    ours = srp.password_claim_signature(
        pool_id=pool,
        user_id_for_srp=user,
        password=password,
        secret=secret,
        srp_b_hex=f"{large_b:x}",
        salt_hex=f"{salt:x}",
        secret_block_b64=block_b64,
        timestamp=timestamp,
    )
    assert ours == expected["PASSWORD_CLAIM_SIGNATURE"]
    assert srp.srp_a_hex(secret) == aws_srp.AWSSRP.get_auth_params(helper)["SRP_A"]


def test_timestamp_matches_pycognito_formatter() -> None:
    for days in range(0, 800, 7):
        when = datetime(2018, 1, 1, 0, 0, 5, tzinfo=UTC) + timedelta(days=days, hours=days % 24)
        expected = aws_srp.AWSSRP.get_cognito_formatted_timestamp(when)
        assert srp.cognito_timestamp(when) == expected


@pytest.fixture
def frozen_pycognito_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[datetime]:
    """pycognito's device flow reads datetime.datetime.utcnow(); pin it."""
    fixed = datetime(2024, 2, 3, 4, 5, 6)

    class FrozenDatetime(datetime):
        @classmethod
        def utcnow(cls) -> FrozenDatetime:
            return cls.fromtimestamp(fixed.replace(tzinfo=UTC).timestamp(), UTC).replace(
                tzinfo=None
            )

    monkeypatch.setattr(aws_srp, "datetime", types.SimpleNamespace(datetime=FrozenDatetime))
    yield fixed.replace(tzinfo=UTC)


def test_device_signature_matches_pycognito(frozen_pycognito_clock: datetime) -> None:
    import random

    rng = random.Random(1234)
    for _ in range(8):
        secret = srp.secret_from_small_a(rng.getrandbits(1024) | 1)
        group_key = f"-{rng.getrandbits(40):x}"
        device_key = f"eu-west-1_{rng.getrandbits(64):x}"
        device_password = base64.b64encode(rng.randbytes(40)).decode()
        salt_hex = f"{rng.getrandbits(128) | 1 << 127:x}"
        b_hex = f"{rng.randrange(1, srp.N):x}"
        block_b64 = base64.b64encode(rng.randbytes(64)).decode()
        helper = pycognito_for(
            secret,
            username="user",
            password="pw",
            pool_id="eu-west-1_pool",
            device_key=device_key,
            device_group_key=group_key,
            device_password=device_password,
        )
        expected = helper.process_device_challenge(
            {"USERNAME": "user", "SALT": salt_hex, "SRP_B": b_hex, "SECRET_BLOCK": block_b64}
        )
        timestamp = srp.cognito_timestamp(frozen_pycognito_clock)
        assert expected["TIMESTAMP"] == timestamp == "Sat Feb 3 04:05:06 UTC 2024"
        ours = srp.device_password_claim_signature(
            device_group_key=group_key,
            device_key=device_key,
            device_password=device_password,
            secret=secret,
            srp_b_hex=b_hex,
            salt_hex=salt_hex,
            secret_block_b64=block_b64,
            timestamp=timestamp,
        )
        assert ours == expected["PASSWORD_CLAIM_SIGNATURE"]


def test_device_verifier_matches_pycognito(monkeypatch: pytest.MonkeyPatch) -> None:
    import random

    rng = random.Random(99)
    for first_salt_byte in (0x00, 0x01, 0x7F, 0x80, 0xFF):
        password_bytes = rng.randbytes(40)
        salt = bytes([first_salt_byte]) + rng.randbytes(15)
        queue = [password_bytes, salt]
        monkeypatch.setattr(
            aws_srp, "os", types.SimpleNamespace(urandom=lambda n, q=queue: q.pop(0))
        )
        password, config = aws_srp.generate_hash_device("-groupKey", "eu-west-1_deviceKey")
        ours = srp.device_verifier_for("-groupKey", "eu-west-1_deviceKey", password, salt)
        assert ours.device_password == password == base64.b64encode(password_bytes).decode()
        assert ours.secret_verifier_config() == config


def test_new_device_verifier_is_random_and_well_formed() -> None:
    one = srp.new_device_verifier("-g", "eu-west-1_d")
    two = srp.new_device_verifier("-g", "eu-west-1_d")
    assert one.device_password != two.device_password
    assert one.salt_b64 != two.salt_b64
    assert len(base64.b64decode(one.device_password, validate=True)) == 40
    again = srp.device_verifier_for(
        "-g", "eu-west-1_d", one.device_password, base64.b64decode(one.salt_b64)
    )
    assert again == one
    assert one.device_password not in repr(one)
    assert one.verifier_b64 not in repr(one)


# --- A minimal SRP server, so the protocol is proven to agree end to end ---------------------


def server_signature(
    *,
    identity: str,
    sign_parts: tuple[str, str],
    password: str,
    salt: int,
    large_a: int,
    small_b: int,
    block: bytes,
    timestamp: str,
) -> tuple[str, str]:
    """Server side written from the SRP-6a definitions: v = g^x, B = kv + g^b, S = (A v^u)^b."""

    def h_int(*ints: int) -> int:
        data = b"".join(i.to_bytes(i.bit_length() // 8 + 1, "big") for i in ints)
        return int.from_bytes(hashlib.sha256(data).digest(), "big")

    inner = hashlib.sha256(f"{identity}:{password}".encode()).digest()
    salt_bytes = salt.to_bytes(salt.bit_length() // 8 + 1, "big")
    x = int.from_bytes(hashlib.sha256(salt_bytes + inner).digest(), "big")
    v = pow(srp.G, x, srp.N)
    k = h_int(srp.N, srp.G)
    large_b = (k * v + pow(srp.G, small_b, srp.N)) % srp.N
    u = h_int(large_a, large_b)
    s = pow(large_a * pow(v, u, srp.N), small_b, srp.N)
    s_bytes = s.to_bytes(s.bit_length() // 8 + 1, "big")
    u_bytes = u.to_bytes(u.bit_length() // 8 + 1, "big")
    prk = hmac.new(u_bytes, s_bytes, hashlib.sha256).digest()
    key = hmac.new(prk, b"Caldera Derived Key\x01", hashlib.sha256).digest()[:16]
    msg = sign_parts[0].encode() + sign_parts[1].encode() + block + timestamp.encode()
    return f"{large_b:x}", base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode()


def test_round_trip_against_simulated_server() -> None:
    import random

    rng = random.Random(7)
    block = rng.randbytes(48)
    timestamp = srp.cognito_timestamp(datetime(2020, 2, 29, 23, 59, 59, tzinfo=UTC))
    for _ in range(3):
        secret = srp.new_client_secret()
        salt = rng.getrandbits(128)
        small_b = rng.getrandbits(1024)
        b_hex, expected = server_signature(
            identity="Pool42alice",
            sign_parts=("Pool42", "alice"),
            password="correct horse",
            salt=salt,
            large_a=secret.large_a,
            small_b=small_b,
            block=block,
            timestamp=timestamp,
        )
        kwargs: dict[str, Any] = {
            "pool_id": "us-east-1_Pool42",
            "user_id_for_srp": "alice",
            "secret": secret,
            "srp_b_hex": b_hex,
            # Leading zeros on the wire must not change x (Amplify parses SALT as an integer).
            "salt_hex": f"000{salt:x}",
            "secret_block_b64": base64.b64encode(block).decode(),
            "timestamp": timestamp,
        }
        assert srp.password_claim_signature(password="correct horse", **kwargs) == expected
        assert srp.password_claim_signature(password="correct horsE", **kwargs) != expected


def test_device_round_trip_via_confirm_device_verifier() -> None:
    """ConfirmDevice's verifier and a later DEVICE_PASSWORD_VERIFIER login agree."""
    verifier = srp.new_device_verifier("-grp", "eu-west-1_dev")
    salt = int.from_bytes(base64.b64decode(verifier.salt_b64), "big")
    v = int.from_bytes(base64.b64decode(verifier.verifier_b64), "big")
    identity = "-grpeu-west-1_dev"
    inner = hashlib.sha256(f"{identity}:{verifier.device_password}".encode()).hexdigest()
    x = int(hashlib.sha256(bytes.fromhex(srp.pad_hex(salt) + inner)).hexdigest(), 16)
    assert v == pow(srp.G, x, srp.N)

    secret = srp.new_client_secret()
    timestamp = srp.cognito_timestamp()
    b_hex, expected = server_signature(
        identity=identity,
        sign_parts=("-grp", "eu-west-1_dev"),
        password=verifier.device_password,
        salt=salt,
        large_a=secret.large_a,
        small_b=123456789123456789,
        block=b"device-block",
        timestamp=timestamp,
    )
    ours = srp.device_password_claim_signature(
        device_group_key="-grp",
        device_key="eu-west-1_dev",
        device_password=verifier.device_password,
        secret=secret,
        srp_b_hex=b_hex,
        salt_hex=f"{salt:x}",
        secret_block_b64=base64.b64encode(b"device-block").decode(),
        timestamp=timestamp,
    )
    assert ours == expected


# --- Client secret --------------------------------------------------------------------------


def test_new_client_secret() -> None:
    secrets_ = [srp.new_client_secret() for _ in range(3)]
    assert len({s.small_a for s in secrets_}) == 3
    for s in secrets_:
        assert 0 < s.small_a < 2**1024
        assert s.large_a == pow(srp.G, s.small_a, srp.N)
        assert srp.srp_a_hex(s) == f"{s.large_a:x}"
        assert re.fullmatch(r"[0-9a-f]+", srp.srp_a_hex(s))


def test_secret_repr_hides_values() -> None:
    s = srp.secret_from_small_a(GO_SMALL_A)
    for text in (repr(s), str(s), f"{s!r}"):
        assert str(GO_SMALL_A) not in text
        assert f"{GO_SMALL_A:x}" not in text
        assert str(s.large_a)[:20] not in text


def test_secret_validation() -> None:
    with pytest.raises(ValueError):
        srp.SrpSecret(small_a=0, large_a=5)
    with pytest.raises(ValueError):
        srp.SrpSecret(small_a=5, large_a=srp.N)
    with pytest.raises(ValueError):
        srp.secret_from_small_a(srp.N)


# --- Timestamps -----------------------------------------------------------------------------


def test_timestamp_single_digit_day_not_padded() -> None:
    assert (
        srp.cognito_timestamp(datetime(2018, 7, 1, 11, 1, 0, tzinfo=UTC))
        == "Sun Jul 1 11:01:00 UTC 2018"
    )
    assert (
        srp.cognito_timestamp(datetime(2018, 7, 10, 1, 2, 3, tzinfo=UTC))
        == "Tue Jul 10 01:02:03 UTC 2018"
    )


def test_timestamp_converts_other_zones_to_utc() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert (
        srp.cognito_timestamp(datetime(2018, 7, 1, 13, 1, 0, tzinfo=plus_two))
        == "Sun Jul 1 11:01:00 UTC 2018"
    )
    # Crossing midnight, month and year backwards.
    assert (
        srp.cognito_timestamp(datetime(2019, 1, 1, 1, 0, 0, tzinfo=plus_two))
        == "Mon Dec 31 23:00:00 UTC 2018"
    )
    minus_five = timezone(timedelta(hours=-5))
    assert (
        srp.cognito_timestamp(datetime(2018, 2, 28, 22, 30, 0, tzinfo=minus_five))
        == "Thu Mar 1 03:30:00 UTC 2018"
    )


def test_timestamp_rejects_naive_datetime() -> None:
    with pytest.raises(ValueError):
        srp.cognito_timestamp(datetime(2018, 7, 1, 11, 1, 0))


def test_timestamp_default_is_now() -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    stamp = srp.cognito_timestamp()
    after = datetime.now(UTC)
    parsed = datetime.strptime(stamp, "%a %b %d %H:%M:%S UTC %Y").replace(tzinfo=UTC)
    assert before <= parsed <= after


@given(st.datetimes(timezones=st.timezones()))
def test_timestamp_english_names_any_zone(when: datetime) -> None:
    # email.utils formats RFC 5322 dates with fixed English names, independent of locale.
    utc = when.astimezone(UTC)
    rfc = format_datetime(utc)  # "Tue, 10 Jul 2018 11:01:00 +0000"
    wday, day, mon, year, clock, _ = rfc.replace(",", "").split()
    assert srp.cognito_timestamp(when) == f"{wday} {mon} {int(day)} {clock} UTC {int(year)}"


def test_timestamp_does_not_use_locale_dependent_strftime(monkeypatch: pytest.MonkeyPatch) -> None:
    # This machine has no non-English locale to switch to, so prove the property directly:
    # the names come from fixed tables, never from strftime (whose %a/%b follow LC_TIME).
    import time

    def refuse(*_: Any) -> str:
        raise AssertionError("strftime used")

    monkeypatch.setattr(time, "strftime", refuse)
    when = datetime(2018, 3, 1, 11, 1, 0, tzinfo=UTC)
    assert srp.cognito_timestamp(when) == "Thu Mar 1 11:01:00 UTC 2018"
    assert "strftime" not in inspect.getsource(srp.cognito_timestamp).split('"""')[-1]


# --- Hostile or malformed server input -------------------------------------------------------


def claim(**overrides: Any) -> str:
    kwargs: dict[str, Any] = go_vector_kwargs() | {
        "secret_block_b64": GO_SECRET_BLOCK,
        "timestamp": "Tue Jul 10 11:01:00 UTC 2018",
    }
    return srp.password_claim_signature(**(kwargs | overrides))


def device_claim(**overrides: Any) -> str:
    kwargs: dict[str, Any] = {
        "device_group_key": "-g",
        "device_key": "eu-west-1_d",
        "device_password": "pw",
        "secret": srp.secret_from_small_a(GO_SMALL_A),
        "srp_b_hex": "499602d2",
        "salt_hex": "499602d2",
        "secret_block_b64": GO_SECRET_BLOCK,
        "timestamp": "Tue Jul 10 11:01:00 UTC 2018",
    }
    return srp.device_password_claim_signature(**(kwargs | overrides))


@pytest.mark.parametrize("make", [claim, device_claim])
@pytest.mark.parametrize("b", [0, srp.N, 2 * srp.N, 7 * srp.N])
def test_b_multiple_of_n_rejected(make: Any, b: int) -> None:
    with pytest.raises(srp.SrpError, match=r"B mod N"):
        make(srp_b_hex=f"{b:x}")


def test_zero_u_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(srp, "calculate_u", lambda _a, _b: 0)
    with pytest.raises(srp.SrpError, match=r"\bu\b"):
        claim()
    with pytest.raises(srp.SrpError, match=r"\bu\b"):
        device_claim()


BAD_HEX = [
    "",
    "xyz",
    "0x1234",
    " 12",
    "12 ",
    "-12",
    "+12",
    "1_2",
    "\uff11\uff12",
    "a" * 3000,
    None,
    12,
]


@pytest.mark.parametrize("make", [claim, device_claim])
@pytest.mark.parametrize("bad", BAD_HEX)
def test_malformed_hex_rejected(make: Any, bad: Any) -> None:
    with pytest.raises(srp.SrpError, match="SRP_B"):
        make(srp_b_hex=bad)
    with pytest.raises(srp.SrpError, match="SALT"):
        make(salt_hex=bad)


@pytest.mark.parametrize("make", [claim, device_claim])
@pytest.mark.parametrize("bad", ["", "====", "abc", "é", "-_-", None, b"YWJj"])
def test_malformed_secret_block_rejected(make: Any, bad: Any) -> None:
    with pytest.raises(srp.SrpError, match="SECRET_BLOCK"):
        make(secret_block_b64=bad)


def test_secret_block_is_decoded_leniently_like_the_reference_clients() -> None:
    # moto sends a UUID as SECRET_BLOCK; pycognito and amazon-cognito-identity-js skip the
    # non-alphabet characters, and so must we, or the demo cannot sign in.
    block = "1b9d6bcd-bbfd-4b2d-9b5d-ab8dfbbd4bed"
    kwargs = go_vector_kwargs()
    lenient = srp.password_claim_signature(
        **kwargs, secret_block_b64=block, timestamp="Tue Jul 10 11:01:00 UTC 2018"
    )
    stripped = srp.password_claim_signature(
        **kwargs, secret_block_b64=block.replace("-", ""), timestamp="Tue Jul 10 11:01:00 UTC 2018"
    )
    assert lenient == stripped


@pytest.mark.parametrize("bad", ["myPool", "", "eu-west-1_", "_pool", "eu west_pool", None])
def test_malformed_pool_id_rejected(bad: Any) -> None:
    with pytest.raises(srp.SrpError, match="pool id"):
        claim(pool_id=bad)


def test_srp_error_is_value_error() -> None:
    assert issubclass(srp.SrpError, ValueError)


def test_uppercase_and_zero_padded_hex_accepted() -> None:
    assert claim(srp_b_hex="499602D2", salt_hex="0000499602D2") == GO_SIGNATURE


# --- gmpy2 and pure-Python arithmetic agree ---------------------------------------------------


@pytest.fixture
def srp_without_gmpy2(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """A second copy of the module imported while gmpy2 cannot be imported."""
    monkeypatch.setitem(sys.modules, "gmpy2", None)  # makes `import gmpy2` raise ImportError
    spec = importlib.util.spec_from_file_location("_srp_without_gmpy2", srp.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_fallback_is_used_without_gmpy2(srp_without_gmpy2: types.ModuleType) -> None:
    assert srp_without_gmpy2.POWMOD_BACKEND == "python"
    assert srp_without_gmpy2._powmod is srp_without_gmpy2._powmod_python


def test_gmpy2_backend_active_when_installed() -> None:
    pytest.importorskip("gmpy2")
    assert srp.POWMOD_BACKEND == "gmpy2"
    assert srp._powmod is srp._powmod_gmpy2


def test_backends_agree(srp_without_gmpy2: types.ModuleType) -> None:
    import random

    slow = srp_without_gmpy2
    rng = random.Random(5)
    for _ in range(4):
        small_a = rng.getrandbits(1024)
        fast_secret = srp.secret_from_small_a(small_a)
        slow_secret = slow.secret_from_small_a(small_a)
        assert fast_secret.large_a == slow_secret.large_a
        common = {
            "srp_b_hex": f"{rng.randrange(1, srp.N):x}",
            "salt_hex": f"{rng.getrandbits(128):x}",
            "secret_block_b64": base64.b64encode(rng.randbytes(32)).decode(),
            "timestamp": "Tue Jul 10 11:01:00 UTC 2018",
        }
        user = {"pool_id": "eu-west-1_p", "user_id_for_srp": "u", "password": "pw"}
        assert srp.password_claim_signature(
            secret=fast_secret, **user, **common
        ) == slow.password_claim_signature(secret=slow_secret, **user, **common)
        device = {"device_group_key": "-g", "device_key": "k", "device_password": "dp"}
        assert srp.device_password_claim_signature(
            secret=fast_secret, **device, **common
        ) == slow.device_password_claim_signature(secret=slow_secret, **device, **common)
        salt = rng.randbytes(16)
        assert srp.device_verifier_for("-g", "k", "dp", salt).verifier_b64 == (
            slow.device_verifier_for("-g", "k", "dp", salt).verifier_b64
        )
    # The Go vector holds on the fallback too.
    slow_secret = slow.secret_from_small_a(GO_SMALL_A)
    assert slow_secret.large_a == GO_LARGE_A
    sig = slow.password_claim_signature(
        **(go_vector_kwargs() | {"secret": slow_secret}),
        secret_block_b64=GO_SECRET_BLOCK,
        timestamp="Tue Jul 10 11:01:00 UTC 2018",
    )
    assert sig == GO_SIGNATURE


@settings(max_examples=60, deadline=None)
@given(
    base=st.integers(min_value=-(2**3100), max_value=2**3100),
    exponent=st.integers(min_value=0, max_value=2**1300),
)
def test_powmod_implementations_agree(base: int, exponent: int) -> None:
    pytest.importorskip("gmpy2")
    assert srp._powmod_gmpy2(base, exponent, srp.N) == srp._powmod_python(base, exponent, srp.N)
    assert type(srp._powmod_gmpy2(base, exponent, srp.N)) is int
