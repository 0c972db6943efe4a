"""/_auth/account's remembered devices: ListDevices with the current one marked, ForgetDevice."""

from __future__ import annotations

import time

from proxy.devtools.cognito_double import CognitoDouble
from tests.integration.test_challenges_devices import PASSWORD, _seed, _sign_in_with_mfa, _sign_out
from tests.support.challenges import flow_browser
from tests.support.stack import Upstream


async def test_forget_this_device_then_mfa_is_asked_again(
    double: CognitoDouble, upstream: Upstream
) -> None:
    kw = _seed(double, upstream, "always")
    async with flow_browser(**kw) as browser:
        done = await _sign_in_with_mfa(browser, double, kw, time.time())
        assert done.status == 303
        page = await browser.open("/_auth/account")
        assert page.status == 200
        assert "Remembered devices" in page.doc.text
        (field,) = page.doc.find("input", name="device")
        key = field["value"]
        assert key == double.devices(kw["pool_id"], "dora")[0]["key"]
        bad = await browser.submit(
            "/_auth/account/devices/forget", {"device": "x"}, csrf=page.doc.csrf()
        )
        assert bad.status == 400
        gone = await browser.submit(
            "/_auth/account/devices/forget", {"device": key}, csrf=page.doc.csrf()
        )
        assert gone.status == 303
        assert double.devices(kw["pool_id"], "dora") == []
        await _sign_out(browser)
        again = await browser.sign_in("dora", PASSWORD)
        assert again.status == 303 and again.location == "/_auth/challenge"
