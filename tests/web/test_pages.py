"""The portal's and console's sign-up, sign-in and sign-out over HTTP, against the admin
API served for real: cookies, CSRF, throttling, headers and error pages."""

from __future__ import annotations

import re

import httpx
import pytest

from quiver.accounts.memberships import memberships_of, set_membership
from quiver.accounts.throttle import EMAIL_LIMIT
from quiver.accounts.users import create_user, user_by_email
from quiver.store import Store
from quiver.store.teams import create_team
from quiver.store.tokens import create_token, revoke_token
from quiver.web.security import CONTENT_SECURITY_POLICY
from tests.web.forms import PASSWORD, csrf_of, submit

SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
    "x-content-type-options": "nosniff",
}


def _cookie(response: httpx.Response, name: str) -> str:
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            return header
    raise AssertionError(f"no {name} cookie in {response.headers.get_list('set-cookie')}")


def test_signing_up_makes_an_owner_of_a_new_team_and_signs_them_in(
    client: httpx.Client, store: Store
) -> None:
    made = submit(
        client,
        "/portal/signup",
        "/portal/signup",
        email="Ada@Example.com",
        password=PASSWORD,
        name="Ada Lovelace",
    )
    assert made.status_code == 303 and made.headers["location"] == "/portal"
    cookie = _cookie(made, "quiver_session")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/portal" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback
    assert "Max-Age=604800" in cookie
    found = user_by_email(store, "ada@example.com")
    assert found is not None and memberships_of(store, found[0].id) == {"ada": "owner"}

    home = client.get("/portal")
    assert home.status_code == 200
    assert "Welcome, Ada Lovelace" in home.text and "Your apps" in home.text
    assert 'href="/portal/catalog"' in home.text
    assert re.search(r'<span class="mono">ada</span>.*owner', home.text, re.S)


def test_sign_up_errors_are_shown_next_to_their_fields(client: httpx.Client) -> None:
    refused = submit(client, "/portal/signup", "/portal/signup", email="ada", password="short")
    assert refused.status_code == 400
    text = refused.text
    assert 'aria-describedby="field-email-error"' in text
    assert 'id="field-email-error"' in text and "Enter an email address like" in text
    assert 'value="ada"' in text, "what was typed is kept"
    again = submit(
        client, "/portal/signup", "/portal/signup", email="ada@example.com", password="short"
    )
    assert 'aria-describedby="field-password-hint field-password-error"' in again.text
    assert "Use at least 12 characters." in again.text
    assert 'value="short"' not in again.text, "a password is never sent back"


def test_a_taken_email_is_said_so_on_sign_up(client: httpx.Client, store: Store) -> None:
    create_user(store, "ada@example.com", PASSWORD)
    taken = submit(
        client, "/portal/signup", "/portal/signup", email="ADA@example.com", password=PASSWORD
    )
    assert taken.status_code == 400 and "exists already" in taken.text


def test_signing_in_and_out_of_the_portal(client: httpx.Client, store: Store) -> None:
    create_user(store, "ada@example.com", PASSWORD)
    assert client.get("/portal").headers["location"] == "/portal/signin"
    signed = submit(
        client, "/portal/signin", "/portal/signin", email="ada@example.com", password=PASSWORD
    )
    assert signed.status_code == 303 and signed.headers["location"] == "/portal"
    assert "Max-Age=0" in _cookie(signed, "quiver_form"), "the sign-in form's token is dropped"
    home = client.get("/portal")
    assert home.status_code == 200
    assert client.get("/portal/signin").headers["location"] == "/portal"

    out = client.post("/portal/signout", data={"csrf": csrf_of(home)})
    assert out.status_code == 303 and out.headers["location"] == "/portal/signin?signed_out=1"
    assert "Max-Age=0" in _cookie(out, "quiver_session")
    assert client.get("/portal").status_code == 303
    assert "You are signed out." in client.get("/portal/signin?signed_out=1").text


def test_a_sign_in_goes_back_to_the_page_that_asked_for_it(
    client: httpx.Client, store: Store
) -> None:
    create_user(store, "ada@example.com", PASSWORD)
    asked = client.get("/portal/signin?next=/portal/apps")
    assert 'name="next" value="/portal/apps"' in asked.text
    signed = client.post(
        "/portal/signin",
        data={
            "csrf": csrf_of(asked),
            "email": "ada@example.com",
            "password": PASSWORD,
            "next": "https://evil.example/",
        },
    )
    assert signed.headers["location"] == "/portal"
    client.cookies.clear()
    asked = client.get("/portal/signin")
    signed = client.post(
        "/portal/signin",
        data={
            "csrf": csrf_of(asked),
            "email": "ada@example.com",
            "password": PASSWORD,
            "next": "/portal/apps",
        },
    )
    assert signed.headers["location"] == "/portal/apps"


def test_a_wrong_password_and_an_unknown_email_read_the_same(
    client: httpx.Client, store: Store
) -> None:
    create_user(store, "ada@example.com", PASSWORD)
    answers = []
    for email in ("ada@example.com", "nobody@example.com"):
        refused = submit(
            client, "/portal/signin", "/portal/signin", email=email, password="wrong password"
        )
        assert refused.status_code == 400
        assert "Email or password is wrong." in refused.text
        answers.append(re.sub(r'value="[^"]*"', "", refused.text))
    assert answers[0] == answers[1]


def test_the_sixth_failed_sign_in_is_throttled_with_a_message(
    client: httpx.Client, store: Store
) -> None:
    create_user(store, "ada@example.com", PASSWORD)
    for _ in range(EMAIL_LIMIT):
        submit(client, "/portal/signin", "/portal/signin", email="ada@example.com", password="x")
    refused = submit(
        client, "/portal/signin", "/portal/signin", email="ada@example.com", password=PASSWORD
    )
    assert refused.status_code == 429
    assert 840 < int(refused.headers["retry-after"]) <= 900
    assert "Too many failed sign-ins for this email. Try again in 15 minutes." in refused.text
    assert 'role="alert"' in refused.text
    # the console counts against the same store
    console = submit(
        client, "/console/signin", "/console/signin", email="ada@example.com", password=PASSWORD
    )
    assert console.status_code == 429


@pytest.mark.parametrize(
    ("headers", "token"),
    [
        ({}, "wrong"),
        ({"Origin": "http://evil.example"}, None),
        ({"Origin": ""}, None),
    ],
)
def test_a_post_without_the_token_or_from_elsewhere_gets_the_403_page(
    client: httpx.Client, store: Store, headers: dict[str, str], token: str | None
) -> None:
    create_user(store, "ada@example.com", PASSWORD)
    page = client.get("/portal/signin")
    sent = {"csrf": token if token is not None else csrf_of(page)}
    sent |= {"email": "ada@example.com", "password": PASSWORD}
    if headers.get("Origin") == "":
        client.headers.pop("Origin")
        headers = {}
    refused = client.post("/portal/signin", data=sent, headers=headers)
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("text/html")
    assert "This form was not accepted" in refused.text
    assert refused.headers["x-request-id"] in refused.text
    assert "quiver_session" not in refused.headers.get("set-cookie", "")


def test_signing_out_needs_the_sessions_token(client: httpx.Client, store: Store) -> None:
    create_user(store, "ada@example.com", PASSWORD)
    submit(client, "/portal/signin", "/portal/signin", email="ada@example.com", password=PASSWORD)
    refused = client.post("/portal/signout", data={"csrf": "guess"})
    assert refused.status_code == 403
    assert client.get("/portal").status_code == 200, "still signed in"


def test_every_page_carries_the_security_headers(client: httpx.Client, store: Store) -> None:
    create_user(store, "ada@example.com", PASSWORD)
    answers = [
        client.get("/portal/signin"),
        client.get("/portal/signup"),
        client.get("/console/signin"),
        client.get("/portal/nothing-here"),
        client.post("/portal/signin", data={"csrf": "x"}),
        submit(client, "/portal/signin", "/portal/signin", email="a@b.c", password="wrong one"),
    ]
    for answer in answers:
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers.get(name) == value, (answer.url, name)
        assert answer.headers["cache-control"] == "no-store"
        assert "<script" not in answer.text and "style=" not in answer.text
    css = client.get("/static/quiver.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert css.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert css.headers["x-content-type-options"] == "nosniff"
    # the JSON API is left as it was
    assert "content-security-policy" not in client.get("/health").headers


def test_pages_that_do_not_exist_are_pages_and_the_api_keeps_problems(
    client: httpx.Client,
) -> None:
    missing = client.get("/console/nothing-here")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    assert "Page not found" in missing.text
    assert missing.headers["x-request-id"] in missing.text
    wrong_method = client.delete("/portal/signin")
    assert wrong_method.status_code == 405 and "text/html" in wrong_method.headers["content-type"]
    api = client.get("/nothing-here")
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"


def test_console_sign_in_with_email_and_password(client: httpx.Client, store: Store) -> None:
    create_user(store, "root@example.com", PASSWORD, name="Root", is_admin=True)
    create_team(store, "payments")
    signed = submit(
        client, "/console/signin", "/console/signin", email="root@example.com", password=PASSWORD
    )
    assert signed.status_code == 303 and signed.headers["location"] == "/console"
    cookie = _cookie(signed, "quiver_session")
    assert "Path=/console" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
    home = client.get("/console")
    assert home.status_code == 200 and "Platform operator" in home.text
    assert "payments" in home.text and "default" in home.text
    assert client.get("/portal").status_code == 303, "a console session is not a portal one"


def test_a_member_of_a_team_signs_in_with_their_role_and_others_are_refused(
    client: httpx.Client, store: Store
) -> None:
    member = create_user(store, "dev@example.com", PASSWORD)
    create_user(store, "nobody@example.com", PASSWORD)
    create_team(store, "payments")
    set_membership(store, member.id, "payments", "developer")
    refused = submit(
        client,
        "/console/signin",
        "/console/signin",
        email="nobody@example.com",
        password=PASSWORD,
    )
    assert refused.status_code == 403 and "no access to the console" in refused.text
    submit(client, "/console/signin", "/console/signin", email="dev@example.com", password=PASSWORD)
    home = client.get("/console")
    assert "Team access" in home.text
    assert re.search(r"payments</span></td><td><span class=\"badge badge-developer\"", home.text)
    assert "default" not in home.text


def test_console_sign_in_with_an_admin_token_acts_with_its_role_until_revoked(
    client: httpx.Client, store: Store
) -> None:
    create_team(store, "payments")
    _, token = create_token(store, "payments-ops", "editor", "payments")
    signed = submit(client, "/console/signin", "/console/signin/token", token=token)
    assert signed.status_code == 303 and signed.headers["location"] == "/console"
    home = client.get("/console")
    assert "token payments-ops" in home.text and "Admin token" in home.text
    assert "badge-developer" in home.text and "default" not in home.text
    assert token not in home.text
    revoke_token(store, "payments-ops")
    assert client.get("/console").headers["location"] == "/console/signin"


def test_a_wrong_admin_token_is_said_so_next_to_its_field(client: httpx.Client) -> None:
    refused = submit(client, "/console/signin", "/console/signin/token", token="qv_" + "x" * 43)
    assert refused.status_code == 400
    assert 'aria-describedby="field-token-hint field-token-error"' in refused.text
    assert "This admin token is unknown or was revoked." in refused.text
    assert "qv_xxx" not in refused.text


def test_a_disabled_user_loses_their_session(client: httpx.Client, store: Store) -> None:
    from quiver.accounts.users import set_disabled

    user = create_user(store, "ada@example.com", PASSWORD)
    submit(client, "/portal/signin", "/portal/signin", email="ada@example.com", password=PASSWORD)
    assert client.get("/portal").status_code == 200
    set_disabled(store, user.id, True)
    assert client.get("/portal").status_code == 303
    refused = submit(
        client, "/portal/signin", "/portal/signin", email="ada@example.com", password=PASSWORD
    )
    assert refused.status_code == 403 and "disabled" in refused.text


def test_a_page_that_fails_shows_the_fault_page_and_logs_its_request_id(
    client: httpx.Client, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("the store fell over")

    monkeypatch.setattr("quiver.web.signing.sign_in", broken)
    failed = submit(client, "/portal/signin", "/portal/signin", email="a@b.co", password=PASSWORD)
    assert failed.status_code == 500 and failed.headers["content-type"].startswith("text/html")
    assert "Something went wrong" in failed.text and "fell over" not in failed.text
    request_id = failed.headers["x-request-id"]
    assert request_id in failed.text
    assert any(request_id in record.getMessage() for record in caplog.records)
    assert failed.headers["content-security-policy"] == CONTENT_SECURITY_POLICY


def test_a_malformed_query_is_a_400_page(client: httpx.Client, store: Store) -> None:
    create_user(store, "root@example.com", PASSWORD, is_admin=True)
    _sign_in_to_console(client, "root@example.com")
    assert client.get("/console?page=2").status_code == 200, "past the last page: the last"
    refused = client.get("/console?page=many")
    assert refused.status_code == 400 and "text/html" in refused.headers["content-type"]
    assert "This request could not be read" in refused.text


def test_a_form_that_is_not_urlencoded_is_a_400_page(client: httpx.Client) -> None:
    page = client.get("/portal/signin")
    refused = client.post(
        "/portal/signin", json={"csrf": csrf_of(page), "email": "a@b.co", "password": PASSWORD}
    )
    assert refused.status_code == 400 and "only forms sent by a browser" in refused.text


def test_the_console_paginates_the_teams_it_lists(client: httpx.Client, store: Store) -> None:
    create_user(store, "root@example.com", PASSWORD, is_admin=True)
    for number in range(24):
        create_team(store, f"team-{number:02d}")
    _sign_in_to_console(client, "root@example.com")
    first = client.get("/console")
    assert 'aria-label="Pages"' in first.text and "Page 1 of 2 &middot; 25 in all" in first.text
    assert 'href="/console?page=2" rel="next">Next page</a>' in first.text
    assert "team-18" in first.text and "team-19" not in first.text
    second = client.get("/console?page=2")
    assert "team-19" in second.text and "team-23" in second.text and "team-18" not in second.text
    assert 'href="/console?page=1" rel="prev">Previous page</a>' in second.text


def _sign_in_to_console(client: httpx.Client, email: str) -> None:
    signed = submit(client, "/console/signin", "/console/signin", email=email, password=PASSWORD)
    assert signed.status_code == 303, signed.text[:500]
