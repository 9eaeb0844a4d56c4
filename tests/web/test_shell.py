"""Signing in and out, the session coming back to where it was, and the dashboard."""

from __future__ import annotations

from typing import Any

from tests.web.conftest import Screens
from tests.web.server import ADMIN_EMAIL, ADMIN_PASSWORD, WindflowServer


def test_sign_in_lands_on_the_dashboard_and_sign_out_returns(
    page: Any, windflow: WindflowServer, screens: Screens
) -> None:
    page.goto(f"{windflow.url}/")
    page.wait_for_url("**/login?next=/")
    screens.take("login")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text().strip() != ""
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Dashboard").wait_for()
    page.get_by_role("region", name="Runs by status").wait_for()
    screens.take("dashboard")
    page.get_by_role("button", name="Your account").click()
    page.get_by_role("menuitem", name="Sign out").click()
    page.get_by_role("heading", name="Sign in to WindFlow").wait_for()


def test_a_deep_link_survives_signing_in(page: Any, windflow: WindflowServer) -> None:
    page.goto(f"{windflow.url}/no-such-page?x=1")
    page.wait_for_url("**/login?next=**")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/no-such-page?x=1")
    page.get_by_role("heading", name="Not found").wait_for()


def sign_in(page: Any, windflow: WindflowServer, next_path: str = "/") -> None:
    page.goto(f"{windflow.url}{next_path}")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_an_expired_session_goes_to_sign_in_and_back(page: Any, windflow: WindflowServer) -> None:
    sign_in(page, windflow, "/no-such-page")
    page.get_by_role("heading", name="Not found").wait_for()
    page.evaluate("localStorage.setItem('windflow.session', JSON.stringify({access_token: 'x', refresh_token: 'y'}))")
    page.reload()
    page.wait_for_url("**/login?next=/no-such-page&expired=1")
    page.get_by_text("Your session ended").wait_for()
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/no-such-page")


def test_tokens_are_refreshed_quietly(page: Any, windflow: WindflowServer) -> None:
    sign_in(page, windflow)
    page.get_by_role("region", name="Runs by status").wait_for()
    session = page.evaluate("JSON.parse(localStorage.getItem('windflow.session'))")
    stale = {**session, "access_token": "expired-access-token"}
    page.evaluate("stale => localStorage.setItem('windflow.session', JSON.stringify(stale))", stale)
    page.reload()
    page.get_by_role("region", name="Runs by status").wait_for()  # the 401 was answered by a refresh
    now = page.evaluate("JSON.parse(localStorage.getItem('windflow.session'))")
    assert now["access_token"] not in ("expired-access-token", session["access_token"])
    assert now["refresh_token"] != session["refresh_token"]  # the old refresh token was spent
