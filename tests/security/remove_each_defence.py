"""Remove each defence once and show its tests fail: `python -m tests.security.remove_each_defence`.

Not collected by pytest. Each entry edits one source file in place (restored afterwards, even on
Ctrl+C), runs the tests docs/security.md names for that defence, and prints CAUGHT when they
fail. An entry whose text no longer appears exactly once says STALE: update it with the code.
Pass entry names to run only those.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).parents[2]


class Mutant(NamedTuple):
    name: str
    path: str  # the source file holding the defence
    defence: str  # its text, which must appear exactly once
    without: str  # the same code with the defence removed
    tests: tuple[tuple[str, str], ...]  # (file under tests/, test name): at least one must fail


MUTANTS = [
    Mutant(
        "stepup_same_user_only",
        "proxy/auth/completion.py",
        "if step.session.sub != state.reauth_sub:",
        "if False:",
        (
            (
                "integration/test_stepup.py",
                "test_a_different_user_at_the_reauth_step_signs_the_browser_out",
            ),
        ),
    ),
    Mutant(
        "stepup_bound_to_its_session",
        "proxy/auth/completion.py",
        "or kit.sessions.record_hash(cookie) != state.reauth_record",
        "or False",
        (("integration/test_stepup.py", "test_another_browsers_reauth_flow_renews_nothing"),),
    ),
    Mutant(
        "stepup_username_from_the_session",
        "proxy/auth/login_routes.py",
        "step = await self._regulated_sign_in(request, session.username, password, None, state)",
        "step = await self._regulated_sign_in(\n"
        '            request, form.get("username") or session.username, password, None, state\n'
        "        )",
        (("integration/test_stepup.py", "test_a_username_posted_to_reauth_is_ignored"),),
    ),
    Mutant(
        "stepup_rule_in_the_gate",
        "proxy/gate/decision.py",
        "if (shortfall := step_up(rule, caller)) is not None:\n            return self._step_up(",
        "if False:\n            return self._step_up(",
        (
            ("unit/test_stepup_decisions.py", "test_proxy_step_up"),
            (
                "integration/test_stepup.py",
                "test_max_auth_age_sends_a_navigation_through_reauth_and_back",
            ),
        ),
    ),
    Mutant(
        "stepup_bearer_never_mfa",
        "proxy/gate/decision.py",
        "no_mfa = require_mfa and not (caller.session is not None and caller.session.multi_factor)",
        "no_mfa = require_mfa and caller.session is not None and not caller.session.multi_factor",
        (("unit/test_stepup_decisions.py", "test_step_up_judges_the_last_interactive_sign_in"),),
    ),
    Mutant(
        "stepup_account_max_age",
        "proxy/auth/account/page.py",
        "if session is not None and self.needs_reauth(session):",
        "if False:",
        (
            (
                "integration/test_stepup.py",
                "test_a_sensitive_action_after_the_max_age_asks_for_the_password_first",
            ),
        ),
    ),
    Mutant(
        "stepup_form_checked_first",
        "proxy/auth/account/page.py",
        "posted = await self.kit.session_form(request)\n"
        "            if isinstance(posted, web.StreamResponse):\n"
        "                return posted\n"
        "            cookie, _ = posted",
        "cookie = request.cookies.get(self.kit.cookies.session)",
        (
            (
                "security/test_account.py",
                "test_a_forged_sensitive_post_from_a_stale_session_is_refused_not_sent_to_reauth",
            ),
        ),
    ),
    Mutant(
        "store_outage_is_the_503_page",
        "proxy/auth/kit.py",
        "            except StoreUnavailable:\n"
        '                return self.error_page(request, 503, "error.unavailable")',
        "            except ZeroDivisionError:\n"
        '                return self.error_page(request, 503, "error.unavailable")',
        (
            (
                "security/test_account.py",
                "test_the_account_page_with_the_store_down_is_the_503_page_never_a_500",
            ),
        ),
    ),
    Mutant(
        "account_password_regulated",
        "proxy/auth/account/password.py",
        "if await self._regulator.banned(session.username, address) is not None:",
        "if False:",
        (
            (
                "integration/test_account_password.py",
                "test_wrong_current_passwords_are_regulated_like_sign_ins",
            ),
        ),
    ),
    Mutant(
        "account_end_own_sessions_only",
        "proxy/sessions/session.py",
        "(k for k in await self._store.members(index) if self._hash_of(k) == record_hash),",
        'iter([f"gate:s:{record_hash}"]),',
        (
            (
                "integration/test_account_sessions.py",
                "test_another_users_session_id_ends_nothing",
            ),
        ),
    ),
    Mutant(
        "csrf_token_login",
        "proxy/auth/kit.py",
        'if not csrf.tokens_match(state.csrf, values.get("csrf")):',
        "if False:",
        (
            (
                "security/test_forms_and_pages.py",
                "test_login_token_is_bound_to_its_own_pre_login_cookie",
            ),
            ("integration/test_login_flow.py", "test_login_post_without_csrf_token_is_refused"),
        ),
    ),
    Mutant(
        "same_origin",
        "proxy/auth/csrf.py",
        '    site = request.headers.get("Sec-Fetch-Site")',
        '    return True\n    site = request.headers.get("Sec-Fetch-Site")',
        (
            (
                "security/test_forms_and_pages.py",
                "test_cross_site_logout_post_is_refused_even_with_the_token",
            ),
            (
                "integration/test_login_flow.py",
                "test_cross_site_login_posts_are_refused_even_with_the_token",
            ),
            ("security/test_cookies.py", "test_behind_tls_termination_the_https_origin_is_ours"),
        ),
    ),
    Mutant(
        "logout_token",
        "proxy/auth/kit.py",
        "            if cookie is not None and not csrf.tokens_match(",
        "            if False and not csrf.tokens_match(",
        (
            ("security/test_forms_and_pages.py", "test_logout_token_is_bound_to_the_session"),
            ("integration/test_login_flow.py", "test_logout_without_the_csrf_token_is_refused"),
        ),
    ),
    Mutant(
        "fixation_delete_old",
        "proxy/auth/completion.py",
        "await kit.sessions.delete(old)  # no fixation",
        "pass  # no fixation",
        (("security/test_cookies.py", "test_sign_in_replaces_a_planted_session_cookie"),),
    ),
    Mutant(
        "flow_state_delete",
        "proxy/auth/completion.py",
        "        await kit.delete_flow(request)\n",
        "",
        (("security/test_cookies.py", "test_a_sign_in_that_stored_its_state_leaves_none_behind"),),
    ),
    Mutant(
        "cookie_httponly",
        "proxy/cookies.py",
        '            httponly=True,\n            samesite="Lax",\n            max_age=max_age,',
        '            samesite="None",\n            max_age=max_age,',
        (
            (
                "security/test_cookies.py",
                "test_secure_cookies_are_host_prefixed_with_exact_attributes",
            ),
            (
                "security/test_cookies.py",
                "test_plain_http_cookies_drop_the_host_prefix_but_keep_the_rest",
            ),
        ),
    ),
    Mutant(
        "cookie_mac",
        "proxy/sessions/sealed.py",
        "if not hmac.compare_digest(self._mac(blob), mac) or blob[0] != _VERSION:",
        "if blob[0] != _VERSION:",
        (
            (
                "security/test_cookies.py",
                "test_a_cookie_we_did_not_issue_is_no_session_never_an_error",
            ),
            (
                "unit/test_sessions.py",
                "test_sealed_foreign_secret_and_namespace_cost_no_store_access",
            ),
        ),
    ),
    Mutant(
        "regulation_ban_check",
        "proxy/auth/login_routes.py",
        "        if wait is not None:\n            return Rejected(",
        "        if False:\n            return Rejected(",
        (
            (
                "security/test_regulation.py",
                "test_banned_username_gets_429_without_calling_cognito",
            ),
            ("security/test_regulation.py", "test_unknown_usernames_are_banned_the_same_way"),
        ),
    ),
    Mutant(
        "regulation_alias",
        "proxy/auth/regulation.py",
        '            subjects.append(self._subject("u", user_id.decode("utf-8", "replace")))',
        "            pass",
        (
            ("security/test_regulation.py", "test_email_alias_and_username_share_the_counter"),
            ("security/test_regulation.py", "test_aliases_share_the_internal_users_counter"),
        ),
    ),
    Mutant(
        "regulation_counts_throttling",
        "proxy/auth/login_routes.py",
        'if isinstance(step, Rejected) and step.message == "error.bad_credentials":',
        "if isinstance(step, Rejected):",
        (
            (
                "security/test_regulation.py",
                "test_cognito_throttling_is_try_again_later_and_not_counted",
            ),
        ),
    ),
    Mutant(
        "cognito_lockout_mapping",
        "proxy/cognito/errors.py",
        "return PasswordAttemptsExceeded(code, message)",
        "return TooManyRequests(code, message)",  # the old reading: throttling, not counted
        (
            (
                "security/test_regulation.py",
                "test_guesses_during_cognitos_lockout_stop_at_the_proxy",
            ),
        ),
    ),
    Mutant(
        "revoke_rotated_refresh_token",
        "proxy/gate/identity.py",
        "            await self._refresher.discard(fresh, session)",
        "            pass",
        (
            (
                "integration/test_refresh_rotation.py",
                "test_signed_out_during_a_refresh_revokes_the_rotated_token",
            ),
        ),
    ),
    Mutant(
        "threat_protection_block_mapping",
        "proxy/cognito/errors.py",
        "        return SignInBlocked(code, message)",
        "        return BadCredentials(code, message)",  # read as a wrong password again
        (
            (
                "integration/test_threat_protection.py",
                "test_a_blocked_sign_in_shows_the_security_page_and_is_not_retried",
            ),
            (
                "integration/test_threat_protection.py",
                "test_a_blocked_sign_in_is_not_counted_as_a_wrong_password",
            ),
        ),
    ),
    Mutant(
        "regulation_ip",
        "proxy/auth/regulation.py",
        "        if bucket is not None:\n            subjects.append",
        "        if False:\n            subjects.append",
        (
            ("security/test_regulation.py", "test_address_counter_spans_usernames"),
            ("security/test_regulation.py", "test_ipv6_addresses_count_per_64"),
        ),
    ),
    Mutant(
        "regulation_success_reset",
        "proxy/auth/login_routes.py",
        "                await self._regulator.succeeded(username)",
        "                pass",
        (("security/test_regulation.py", "test_success_resets_the_username_counter"),),
    ),
    Mutant(
        "form_size_cap",
        "proxy/app.py",
        "MAX_FORM_BYTES = 16 * 1024",
        "MAX_FORM_BYTES = 16 * 1024 * 1024",
        (("security/test_limits.py", "test_oversize_login_form_is_413_before_any_cognito_call"),),
    ),
    Mutant(
        "status_431",
        "proxy/server.py",
        "status = 431 if _too_large(exc) else 400",
        "status = 400",
        (
            ("security/test_limits.py", "test_oversize_header_is_431"),
            ("security/test_limits.py", "test_too_many_headers_is_431"),
        ),
    ),
    Mutant(
        "header_deadline",
        "proxy/server.py",
        "            keepalive_timeout=limits.header_timeout,\n",
        "",
        (("security/test_limits.py", "test_slow_request_head_is_cut_at_the_header_deadline"),),
    ),
    Mutant(
        "body_timeout",
        "proxy/auth/kit.py",
        "async with asyncio.timeout(self._body_timeout):",
        "async with asyncio.timeout(None):",
        (("security/test_limits.py", "test_slow_form_body_is_408"),),
    ),
    Mutant(
        "upstream_cap",
        "proxy/gate/decision.py",
        "        if not capacity.acquire():",
        "        if False:",
        (
            (
                "faults/test_upstream.py",
                "test_sick_upstreams_stay_bounded_and_others_are_unaffected",
            ),
        ),
    ),
    Mutant(
        "upstream_head_deadline",
        "proxy/forward.py",
        "head = None if request.body_exists else self._head_deadline",
        "head = None",
        (
            (
                "faults/test_upstream.py",
                "test_sick_upstreams_stay_bounded_and_others_are_unaffected",
            ),
        ),
    ),
    Mutant(
        "connection_cap",
        "proxy/server.py",
        "        if isinstance(manager, GateServer) and manager.at_capacity():",
        "        if False:",
        (("security/test_limits.py", "test_connections_past_the_cap_get_503_and_are_closed"),),
    ),
    Mutant(
        "non_origin_form",
        "proxy/server.py",
        '    if not request.raw_path.startswith("/"):',
        "    if False:",
        (
            (
                "security/test_smuggling.py",
                "test_ambiguous_request_is_refused_and_nothing_is_forwarded",
            ),
        ),
    ),
    Mutant(
        "shortcut_non_path_target",
        "proxy/server.py",
        '                message.path[:1] != "/"',
        "                False",
        (
            (
                "security/test_shortcut.py",
                "test_a_target_that_is_not_a_path_is_refused_even_for_a_signed_in_user",
            ),
        ),
    ),
    Mutant(
        "quiet_malformed_log",
        "proxy/server.py",
        "        if not isinstance(exc, HttpProcessingError):",
        "        if True:",
        (
            (
                "security/test_smuggling.py",
                "test_malformed_request_is_one_warning_line_without_traceback_or_bytes",
            ),
            ("security/test_limits.py", "test_oversize_header_is_431"),
        ),
    ),
    Mutant(
        "quiet_sdk_logs",
        "proxy/cognito/client.py",
        "        quiet_sdk_logs()\n",
        "",
        (("security/test_log_hygiene.py", ""),),
    ),
    Mutant(
        "csp_frame_ancestors",
        "proxy/auth/pages.py",
        "form-action {src(self_, form)}; frame-ancestors 'none'",
        "form-action {src(self_, form)}",
        (
            (
                "security/test_forms_and_pages.py",
                "test_every_page_of_ours_carries_the_security_headers",
            ),
        ),
    ),
    Mutant(
        "clear_site_data",
        "proxy/auth/logout_routes.py",
        '        response.headers["Clear-Site-Data"] = \'"cache"\'\n',
        "",
        (("security/test_forms_and_pages.py", "test_logout_clears_site_data"),),
    ),
    Mutant(
        "redirect_validation",
        "proxy/auth/redirects.py",
        ') -> str:\n    """Return ``candidate`` re-encoded',
        ') -> str:\n    return candidate or default\n    """Return ``candidate`` re-encoded',
        (
            (
                "security/test_forms_and_pages.py",
                "test_redirect_after_login_stays_on_our_origin_for_the_whole_corpus",
            ),
            ("security/test_forms_and_pages.py", "test_redirect_after_a_real_sign_in_stays_home"),
        ),
    ),
    # -- issue 13: found from outside -------------------------------------------------------
    Mutant(
        "refresh_with_device_key",
        "proxy/refresh.py",
        "session.refresh_token, session.username, session.device_key",
        "session.refresh_token, session.username",
        (
            (
                "integration/test_challenges_devices.py",
                "test_sign_out_everywhere_refreshes_expired_device_linked_tokens_with_the_key",
            ),
            (
                "integration/test_challenges_devices.py",
                "test_tokens_linked_to_a_device_refresh_with_its_key",
            ),
        ),
    ),
    Mutant(
        "our_cookies_kept_from_app",
        "proxy/cookies.py",
        'if pair.strip() and not self.is_ours(pair.split("=", 1)[0])',
        "if pair.strip()",
        (
            (
                "security/test_cookie_ownership.py",
                "test_no_cookie_of_ours_reaches_the_app_in_any_spelling",
            ),
            ("integration/test_login_flow.py", "test_the_proxy_cookies_never_reach_the_upstream"),
        ),
    ),
    Mutant(
        "our_cookie_spellings",
        "proxy/cookies.py",
        "        return _bare(name) in self._bare_names",
        "        return name in self.names[:2]  # the old list: exact session and login names",
        (
            (
                "security/test_cookie_ownership.py",
                "test_no_cookie_of_ours_reaches_the_app_in_any_spelling",
            ),
            ("security/test_cookie_ownership.py", "test_the_app_cannot_set_our_cookies"),
        ),
    ),
    Mutant(
        "upstream_set_cookie_dropped",
        "proxy/forward.py",
        "if self._refused_set_cookie is not None and self._refused_set_cookie(value):",
        "if False:",
        (("security/test_cookie_ownership.py", "test_the_app_cannot_set_our_cookies"),),
    ),
    Mutant(
        "nameless_set_cookie",
        "proxy/cookies.py",
        "        return bool(eq) and not name.strip() and self.is_ours(",
        "        return False and not name.strip() and self.is_ours(",
        (("security/test_cookie_ownership.py", "test_the_app_cannot_set_our_cookies"),),
    ),
    Mutant(
        "unknown_charset_400",
        "proxy/auth/kit.py",
        "        except (ValueError, LookupError, web.HTTPException):",
        "        except (ValueError, web.HTTPException):",
        (
            (
                "security/test_forms_and_pages.py",
                "test_a_form_in_an_unknown_charset_is_400_never_500",
            ),
        ),
    ),
    Mutant(
        "prelogin_writes_nothing",
        "proxy/auth/kit.py",
        "        return state, self._tokens.issue(state)",
        "        return state, await self.flows.create(state.to_bytes(), self._login_timeout)",
        (
            (
                "security/test_prelogin.py",
                "test_a_flood_of_login_pages_writes_nothing_to_the_memory_store",
            ),
            ("security/test_prelogin.py", "test_a_flood_of_login_pages_writes_nothing_to_redis"),
        ),
    ),
    Mutant(
        "prelogin_token_mac",
        "proxy/auth/prelogin.py",
        "            if not hmac.compare_digest(self._mac(body), _unb64(mac)):",
        "            if False:",
        (("unit/test_prelogin.py", "test_another_key_or_a_changed_byte_is_nothing"),),
    ),
    Mutant(
        "method_override_stripped",
        "proxy/gate/outgoing.py",
        "            names.extend(METHOD_OVERRIDE)\n",
        "            pass\n",
        (
            (
                "security/test_method_override.py",
                "test_override_headers_never_reach_the_app_by_default",
            ),
        ),
    ),
    Mutant(
        "method_override_judged",
        "proxy/gate/outgoing.py",
        "        return override_methods(headers) | {method}",
        "        return frozenset((method,))",
        (
            (
                "security/test_method_override.py",
                "test_a_passed_override_is_judged_as_the_method_it_names",
            ),
        ),
    ),
    Mutant(
        "check_judges_override",
        "proxy/gate/decision.py",
        "            methods = override_methods(request.headers) | {method}",
        "            methods = frozenset((method,))",
        (
            (
                "security/test_method_override.py",
                "test_check_judges_the_override_headers_the_auth_proxy_passes_on",
            ),
        ),
    ),
    Mutant(
        "host_trailing_dot",
        "proxy/gate/policy.py",
        '    return name[:-1] if name.endswith(".") else name',
        "    return name",
        (
            ("security/test_hosts.py", "test_every_spelling_of_a_bound_host_gets_its_rules"),
            ("security/test_hosts.py", "test_check_normalises_a_trusted_forwarded_host"),
        ),
    ),
    Mutant(
        "server_header",
        "proxy/server.py",
        "        set_server_header(limits.header)\n",
        "",
        (
            (
                "security/test_fingerprint.py",
                "test_our_answers_name_the_product_without_a_version",
            ),
            ("security/test_fingerprint.py", "test_the_server_header_is_a_setting"),
        ),
    ),
    Mutant(
        "rules_see_the_query",
        "proxy/gate/decision.py",
        "        rule = route.rule_for_all(methods, path)\n",
        "        rule = route.rule_for_all(methods, path + query)\n",
        (
            (
                "security/test_peer_advisories.py",
                "test_a_public_pattern_is_never_matched_against_the_query",
            ),
        ),
    ),
    Mutant(
        "forwarded_uri_from_anyone",
        "proxy/forwarded.py",
        "    if peer is None or not trusted or not _trusted(peer, trusted):\n        return None",
        "    if peer is None:\n        return None",
        (
            (
                "security/test_peer_advisories.py",
                "test_forwarded_uri_headers_are_believed_from_nobody_by_default",
            ),
        ),
    ),
    Mutant(
        "raw_fragment_refused",
        "proxy/gate/paths.py",
        '_REFUSED_RAW = frozenset("#\\\\;")',
        '_REFUSED_RAW = frozenset("\\\\;")',
        (("security/test_peer_advisories.py", "test_a_fragment_cannot_widen_a_match"),),
    ),
    Mutant(
        "identity_header_spellings",
        "proxy/gate/headers.py",
        "        name = canonical_name(header_name)\n",
        "        name = header_name.lower()\n",
        (
            (
                "security/test_peer_advisories.py",
                "test_no_spelling_of_an_identity_header_reaches_the_app",
            ),
        ),
    ),
    Mutant(
        "upstream_head_crlf",
        "proxy/upstream.py",
        "if not _crlf_free(text, lines):",
        "if False:",
        (("unit/test_upstream.py", "test_a_header_with_a_line_break_is_never_written"),),
    ),
    Mutant(
        "upstream_retry_idempotent_only",
        "proxy/upstream.py",
        "retry = body is None and method in IDEMPOTENT",
        "retry = True",
        (
            (
                "unit/test_upstream.py",
                "test_a_stale_keepalive_connection_is_retried_only_for_idempotent_requests",
            ),
        ),
    ),
    Mutant(
        "upstream_tls_verified",
        "proxy/forward.py",
        'ssl=ssl.create_default_context() if self._scheme == "https" else None,',
        'ssl=ssl._create_unverified_context() if self._scheme == "https" else None,',
        (("unit/test_upstream.py", "test_an_https_upstream_is_verified"),),
    ),
    Mutant(
        "log_text_escaped",
        "proxy/logsink.py",
        '    if value.isprintable() and "\\\\" not in value:\n'
        "        return value\n    return value.translate",
        "    return value\n    return value.translate",
        (
            (
                "unit/test_logsink.py",
                "test_a_text_line_cannot_be_split_or_carry_control_characters",
            ),
        ),
    ),
    Mutant(
        "log_json_escaped",
        "proxy/logsink.py",
        "if every.isascii() and every.isprintable() and "
        """'"' not in every and "\\\\" not in every:""",
        "if True:",
        (("unit/test_logsink.py", "test_every_hostile_value_is_valid_json_on_one_line"),),
    ),
    Mutant(
        "upstream_one_answer_per_request",
        "proxy/upstream.py",
        'raise UpstreamError("the upstream sent more than one response")',
        "pass",
        (("unit/test_upstream.py", "test_a_second_answer_to_one_request_ends_the_connection"),),
    ),
    Mutant(
        "profile_only_listed_attributes",
        "proxy/auth/account/profile.py",
        "        for name in self._plain:\n            field = _FIELD_PREFIX + name",
        "        for name in [k.removeprefix(_FIELD_PREFIX) for k in form if k.startswith("
        "_FIELD_PREFIX)]:\n            field = _FIELD_PREFIX + name",
        (
            (
                "integration/test_account_profile.py",
                "test_fields_the_settings_leave_out_are_never_written",
            ),
        ),
    ),
    Mutant(
        "profile_contact_is_sensitive",
        "proxy/auth/account/profile.py",
        'page.sensitive_route(router, "account/profile/contact", self.change_contact)',
        'page.route(router, "account/profile/contact", self.change_contact)',
        (
            (
                "integration/test_account_profile.py",
                "test_an_old_sign_in_must_be_confirmed_before_a_new_email_not_a_new_name",
            ),
        ),
    ),
    Mutant(
        "profile_change_renews_tokens",
        "proxy/app.py",
        "renew_session=lambda cookie: identity.renew_cookie(cookie),",
        "renew_session=lambda cookie: identity.resolve_cookie(cookie),",
        (
            (
                "integration/test_account_profile.py",
                "test_a_new_name_reaches_the_app_on_the_next_request",
            ),
        ),
    ),
    Mutant(
        "mfa_enrolment_sealed_under_the_session_cookie",
        "proxy/auth/account/methods.py",
        "return AESGCM(hmac.new(self._key, cookie.encode(), hashlib.sha256).digest())",
        'return AESGCM(hmac.new(self._key, b"", hashlib.sha256).digest())',
        (
            (
                "unit/test_totp_enrolments.py",
                "test_only_the_cookie_and_user_that_started_it_can_read_it",
            ),
        ),
    ),
    Mutant(
        "mfa_wrong_codes_end_the_enrolment",
        "proxy/auth/account/methods.py",
        "if count > MAX_WRONG_CODES:\n            await self.close(record_hash)",
        "if False:\n            await self.close(record_hash)",
        (
            ("integration/test_account_mfa.py", "test_wrong_codes_are_counted_and_end_the_setup"),
            (
                "unit/test_totp_enrolments.py",
                "test_wrong_codes_end_it_and_a_new_start_counts_afresh",
            ),
            ("unit/test_totp_enrolments.py", "test_parallel_tries_all_count"),
        ),
    ),
    Mutant(
        "mfa_changes_are_sensitive",
        "proxy/auth/account/methods.py",
        'page.sensitive_route(router, "account/methods/mfa", self.set_factor)',
        'page.route(router, "account/methods/mfa", self.set_factor)',
        (
            (
                "integration/test_account_mfa.py",
                "test_an_old_sign_in_must_be_confirmed_before_any_change",
            ),
        ),
    ),
    Mutant(
        "passkey_options_bound_to_the_session",
        "proxy/auth/account/passkeys.py",
        'if not self._ticket_admits(viewer.cookie, form.get("ticket", ""), challenge):',
        "if False:",
        (
            (
                "integration/test_account_passkeys.py",
                "test_options_given_to_another_session_are_refused_before_cognito",
            ),
        ),
    ),
    Mutant(
        "passkey_changes_are_sensitive",
        "proxy/auth/account/passkeys.py",
        'page.sensitive_route(router, "account/passkeys/add", self.add)',
        'page.route(router, "account/passkeys/add", self.add)',
        (
            (
                "integration/test_account_passkeys.py",
                "test_an_old_sign_in_must_be_confirmed_before_adding_or_deleting",
            ),
        ),
    ),
]


def main(only: list[str]) -> int:
    missed = 0
    for mutant in MUTANTS:
        if only and mutant.name not in only:
            continue
        source = ROOT / mutant.path
        original = source.read_text()
        if original.count(mutant.defence) != 1:
            print(f"{mutant.name}: STALE ({mutant.path} changed)", flush=True)
            missed += 1
            continue
        source.write_text(original.replace(mutant.defence, mutant.without))
        try:
            run = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
                + [f"tests/{file}" + (f"::{name}" if name else "") for file, name in mutant.tests],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
        finally:
            source.write_text(original)
        failed = [
            line.split(" - ")[0].removeprefix("FAILED ")
            for line in run.stdout.splitlines()
            if line.startswith("FAILED ")
        ]
        caught = run.returncode == 1 and bool(failed)
        missed += not caught
        verdict = "CAUGHT" if caught else "NOT CAUGHT"
        print(f"{mutant.name}: {verdict} by {len(failed)}: {', '.join(failed)}", flush=True)
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
