"""Repeated failed logins lock out the account and the address, on every login path."""

import datetime
import io

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import Role
from tests.factories import DEMO_PASSWORD

pytestmark = pytest.mark.django_db

LOCKED = (
    "Too many failed logins for this account or from this address. Logging in is blocked "
    "for 15 minutes; try again after that, or ask an administrator to unlock it."
)
WRONG_LOGIN = (
    "Please enter a correct username and password. Note that both fields may be case-sensitive."
)


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.ANJU_LOGIN_FAILURE_LIMIT = 3
    settings.ANJU_LOGIN_IP_FAILURE_LIMIT = 5
    settings.ANJU_LOGIN_COOLOFF_MINUTES = 15


@pytest.fixture
def alice(make_user):
    return make_user(username="alice")


@pytest.fixture
def bob(make_user):
    return make_user(username="bob")


def web_login(username, password, ip="203.0.113.7", path="/login/"):
    client = Client(REMOTE_ADDR=ip)
    return client, client.post(path, {"username": username, "password": password})


def api_login(username, password, ip="203.0.113.7"):
    return APIClient(REMOTE_ADDR=ip).post(
        "/api/auth/token/", {"username": username, "password": password}
    )


def assert_locked_page(response):
    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    assert "registration/locked_out.html" in [t.name for t in response.templates]
    page = response.content.decode()
    assert "<h1>Login blocked</h1>" in page
    assert LOCKED in page
    assert 'name="password"' not in page


# --- per account ------------------------------------------------------------------------


def test_failures_below_the_limit_say_wrong_password_and_the_right_one_still_works(alice):
    for _ in range(2):
        _, response = web_login("alice", "wrong-guess-1")
        assert response.status_code == 200
        assert response.context["form"].non_field_errors() == [WRONG_LOGIN]

    client, response = web_login("alice", DEMO_PASSWORD)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_the_limit_of_failures_locks_the_account_with_a_page_saying_so(alice):
    for _ in range(2):
        web_login("alice", "wrong-guess-1")

    _, response = web_login("alice", "wrong-guess-1")

    assert_locked_page(response)


def test_a_locked_account_refuses_even_the_right_password(alice):
    for _ in range(3):
        web_login("alice", "wrong-guess-1")

    client, response = web_login("alice", DEMO_PASSWORD)

    assert_locked_page(response)
    assert "_auth_user_id" not in client.session


def test_an_account_is_locked_whatever_addresses_the_guesses_come_from(alice):
    for n in range(3):
        web_login("alice", f"wrong-guess-{n}", ip=f"198.51.100.{n + 1}")

    _, response = web_login("alice", DEMO_PASSWORD, ip="192.0.2.99")

    assert_locked_page(response)


def test_a_locked_account_does_not_lock_other_accounts_at_the_same_address(alice, bob):
    for _ in range(3):
        web_login("alice", "wrong-guess-1")

    client, response = web_login("bob", DEMO_PASSWORD)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(bob.pk)


def test_attempts_during_a_lockout_do_not_prolong_it(alice):
    for _ in range(3):
        web_login("alice", "wrong-guess-1")
    for _ in range(5):
        web_login("alice", "wrong-guess-2", ip="192.0.2.50")

    assert sum(a.failures_since_start for a in AccessAttempt.objects.all()) == 3


def test_the_lockout_ends_after_the_cool_off_time(alice):
    for _ in range(3):
        web_login("alice", "wrong-guess-1")
    sixteen_minutes_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=16)
    AccessAttempt.objects.update(attempt_time=sixteen_minutes_ago)

    client, response = web_login("alice", DEMO_PASSWORD)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(alice.pk)


def test_the_limit_and_cool_off_time_come_from_the_settings(settings, alice):
    settings.ANJU_LOGIN_FAILURE_LIMIT = 5
    settings.ANJU_LOGIN_COOLOFF_MINUTES = 1
    for _ in range(4):
        assert web_login("alice", "wrong-guess-1")[1].status_code == 200

    _, response = web_login("alice", "wrong-guess-1")

    assert response.status_code == 429
    assert response["Retry-After"] == "60"
    assert "Logging in is blocked for 1 minute;" in response.content.decode()


# --- per address ------------------------------------------------------------------------


def test_many_accounts_tried_from_one_address_lock_the_address(make_user):
    make_user(username="carol")
    for n in range(5):
        web_login(f"someone{n}", "wrong-guess-1")

    client, response = web_login("carol", DEMO_PASSWORD)

    assert_locked_page(response)
    assert "_auth_user_id" not in client.session


def test_an_address_below_its_limit_is_not_locked(make_user):
    make_user(username="carol")
    for n in range(4):
        web_login(f"someone{n}", "wrong-guess-1")

    _, response = web_login("carol", DEMO_PASSWORD)

    assert response.status_code == 302


def test_a_locked_address_does_not_lock_the_same_account_elsewhere(make_user):
    make_user(username="carol")
    for n in range(5):
        web_login(f"someone{n}", "wrong-guess-1")

    _, response = web_login("carol", DEMO_PASSWORD, ip="192.0.2.99")

    assert response.status_code == 302


# --- the other login paths --------------------------------------------------------------


def test_the_admin_login_locks_out_too(make_user):
    make_user(Role.ADMINISTRATOR, username="admin")
    for _ in range(3):
        web_login("admin", "wrong-guess-1", path="/admin/login/")

    client, response = web_login("admin", DEMO_PASSWORD, path="/admin/login/")

    assert_locked_page(response)
    assert client.get("/admin/").status_code == 302


def test_the_token_endpoint_locks_out_with_json(alice):
    for _ in range(2):
        response = api_login("alice", "wrong-guess-1")
        assert response.status_code == 400
        assert response.json() == {
            "non_field_errors": ["Unable to log in with provided credentials."]
        }

    response = api_login("alice", "wrong-guess-1")

    assert response.status_code == 429
    assert response["Retry-After"] == "900"
    assert response.json() == {"detail": LOCKED}


def test_a_locked_account_gets_no_token_with_the_right_password(alice):
    for _ in range(3):
        api_login("alice", "wrong-guess-1")

    response = api_login("alice", DEMO_PASSWORD)

    assert response.status_code == 429
    assert response.json() == {"detail": LOCKED}
    assert not Token.objects.exists()


def test_the_token_endpoint_locks_an_address_out(make_user):
    make_user(username="carol")
    for n in range(5):
        api_login(f"someone{n}", "wrong-guess-1")

    response = api_login("carol", DEMO_PASSWORD)

    assert response.status_code == 429
    assert not Token.objects.exists()
    assert api_login("carol", DEMO_PASSWORD, ip="192.0.2.99").status_code == 200


def test_failures_on_every_path_add_up(alice):
    web_login("alice", "wrong-guess-1")
    web_login("alice", "wrong-guess-1", path="/admin/login/")
    api_login("alice", "wrong-guess-1")

    assert api_login("alice", DEMO_PASSWORD).status_code == 429
    assert_locked_page(web_login("alice", DEMO_PASSWORD)[1])


# --- behind a proxy ---------------------------------------------------------------------


def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(settings, make_user):
    settings.ANJU_TRUSTED_PROXIES = ["10.0.0.0/8"]
    make_user(username="carol")

    def via_proxy(username, password, client_ip):
        return Client(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR=client_ip).post(
            "/login/", {"username": username, "password": password}
        )

    for n in range(5):
        via_proxy(f"someone{n}", "wrong-guess-1", "203.0.113.7")

    assert via_proxy("carol", DEMO_PASSWORD, "203.0.113.7").status_code == 429
    assert via_proxy("carol", DEMO_PASSWORD, "198.51.100.1").status_code == 302
    assert {a.ip_address for a in AccessAttempt.objects.all()} == {"203.0.113.7"}


def test_a_forwarded_header_from_an_untrusted_client_is_ignored(make_user):
    make_user(username="carol")
    for n in range(5):
        Client(REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=f"192.0.2.{n}").post(
            "/login/", {"username": f"someone{n}", "password": "wrong-guess-1"}
        )

    _, response = web_login("carol", DEMO_PASSWORD, ip="203.0.113.7")

    assert response.status_code == 429


# --- unlocking and what is kept ---------------------------------------------------------


def test_an_administrator_unlocks_an_account_with_the_axes_command(alice):
    for _ in range(3):
        web_login("alice", "wrong-guess-1")

    call_command("axes_reset_username", "alice", stdout=io.StringIO())

    assert web_login("alice", DEMO_PASSWORD)[1].status_code == 302


def test_the_guessed_passwords_are_not_kept(alice):
    web_login("alice", "wrong-guess-1")
    api_login("alice", "wrong-guess-2")

    kept = " ".join(AccessAttempt.objects.values_list("post_data", flat=True))
    assert "wrong-guess" not in kept
    assert "password=********************" in kept
