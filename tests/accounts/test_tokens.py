"""API tokens: issued with an expiry, rotated on each request, revoked on logout and on a
password change; the token endpoint and the API are throttled."""

import datetime

import pytest
from django.contrib.auth.forms import PasswordChangeForm
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from accounts.models import Role
from accounts.services import token_issue
from tests.factories import DEMO_PASSWORD

pytestmark = pytest.mark.django_db

EXPIRED = "Your token has expired. Log in again (POST /api/auth/token/) to get a new one."
PROBE = "/api/photo-slots/"  # any endpoint that needs a signed-in user


@pytest.fixture
def alice(make_user):
    return make_user(username="alice")


def ask_token(username="alice", password=DEMO_PASSWORD, client=None, ip="203.0.113.7"):
    client = client or APIClient(REMOTE_ADDR=ip)
    return client.post("/api/auth/token/", {"username": username, "password": password})


def with_token(key) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def age(token, **delta):
    Token.objects.filter(pk=token.pk).update(created=timezone.now() - datetime.timedelta(**delta))


# --- issue and expiry -------------------------------------------------------------------


def test_a_token_comes_with_when_it_expires(alice):
    response = ask_token()

    assert response.status_code == 200
    token = Token.objects.get(user=alice)
    expires = token.created + datetime.timedelta(hours=168)
    assert response.json() == {
        "token": token.key,
        "expires": expires.astimezone(timezone.get_current_timezone()).isoformat(),
    }
    assert with_token(token.key).get(PROBE).status_code == 200


def test_the_lifetime_comes_from_the_settings(settings, alice):
    settings.ANJU_TOKEN_TTL_HOURS = 2
    token = token_issue(user=alice)
    age(token, hours=1, minutes=59)
    assert with_token(token.key).get(PROBE).status_code == 200

    age(token, hours=2)
    response = with_token(token.key).get(PROBE)

    assert response.status_code == 401
    assert response.json() == {"detail": EXPIRED}


def test_an_expired_token_is_refused_with_a_message_saying_so(alice):
    token = token_issue(user=alice)
    age(token, hours=168)

    response = with_token(token.key).get(PROBE)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json() == {"detail": EXPIRED}


def test_a_token_just_before_its_expiry_still_works(alice):
    token = token_issue(user=alice)
    age(token, hours=167, minutes=59)

    assert with_token(token.key).get(PROBE).status_code == 200


def test_a_phone_with_an_expired_token_in_its_headers_can_still_ask_for_a_new_one(alice):
    old = token_issue(user=alice)
    age(old, hours=200)

    response = ask_token(client=with_token(old.key))

    assert response.status_code == 200
    assert with_token(response.json()["token"]).get(PROBE).status_code == 200


def test_an_inactive_users_token_is_refused(alice):
    token = token_issue(user=alice)
    alice.is_active = False
    alice.save()

    response = with_token(token.key).get(PROBE)

    assert response.status_code == 401
    assert response.json() == {"detail": "User inactive or deleted."}


# --- rotation ---------------------------------------------------------------------------


def test_asking_again_issues_a_new_token_and_the_old_one_stops_working(alice):
    first = ask_token().json()["token"]

    second = ask_token().json()["token"]

    assert second != first
    assert list(Token.objects.values_list("key", flat=True)) == [second]
    assert with_token(second).get(PROBE).status_code == 200
    response = with_token(first).get(PROBE)
    assert response.status_code == 401
    assert response.json() == {"detail": "Invalid token."}


def test_a_wrong_password_leaves_the_current_token_alone(alice):
    token = token_issue(user=alice)

    response = ask_token(password="wrong-guess-1")

    assert response.status_code == 400
    assert list(Token.objects.values_list("key", flat=True)) == [token.key]


# --- revocation -------------------------------------------------------------------------


def test_api_logout_revokes_the_token(alice):
    token = token_issue(user=alice)
    client = with_token(token.key)

    response = client.post("/api/auth/logout/")

    assert response.status_code == 204
    assert response.content == b""
    assert not Token.objects.exists()
    assert client.get(PROBE).status_code == 401


def test_api_logout_needs_a_signed_in_user(db):
    response = APIClient().post("/api/auth/logout/")

    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}


def test_api_logout_from_a_session_revokes_the_users_token(alice):
    token = token_issue(user=alice)
    client = APIClient(enforce_csrf_checks=False)
    client.force_login(alice)

    assert client.post("/api/auth/logout/").status_code == 204
    assert not Token.objects.filter(pk=token.pk).exists()


def test_logging_out_of_the_site_revokes_the_token(alice, make_user):
    other = token_issue(user=make_user(username="bob"))
    token = token_issue(user=alice)
    client = Client()
    client.force_login(alice)

    assert client.post("/logout/").status_code == 302

    assert with_token(token.key).get(PROBE).status_code == 401
    assert with_token(other.key).get(PROBE).status_code == 200


def test_logging_in_to_the_site_keeps_the_token(alice):
    token = token_issue(user=alice)

    response = Client().post("/login/", {"username": "alice", "password": DEMO_PASSWORD})

    assert response.status_code == 302
    assert with_token(token.key).get(PROBE).status_code == 200


def test_set_password_revokes_the_token(alice):
    token = token_issue(user=alice)

    alice.set_password("a-new-pass-phrase-77")
    alice.save()

    assert with_token(token.key).get(PROBE).status_code == 401


def test_an_unusable_password_revokes_the_token(alice):
    token = token_issue(user=alice)

    alice.set_unusable_password()
    alice.save(update_fields=["password"])

    assert not Token.objects.filter(pk=token.pk).exists()


def test_saving_the_user_without_a_new_password_keeps_the_token(alice):
    token = token_issue(user=alice)

    alice.first_name = "Alice"
    alice.save()

    assert with_token(token.key).get(PROBE).status_code == 200


def test_the_password_change_form_revokes_the_token(alice):
    token = token_issue(user=alice)
    form = PasswordChangeForm(
        alice,
        {
            "old_password": DEMO_PASSWORD,
            "new_password1": "a-new-pass-phrase-77",
            "new_password2": "a-new-pass-phrase-77",
        },
    )
    assert form.is_valid(), form.errors

    form.save()

    assert not Token.objects.filter(pk=token.pk).exists()


def test_an_administrator_setting_a_password_in_the_admin_revokes_the_token(alice, make_user):
    token = token_issue(user=alice)
    admin = Client()
    admin.force_login(make_user(Role.ADMINISTRATOR, username="admin"))

    response = admin.post(
        f"/admin/accounts/user/{alice.pk}/password/",
        {
            "usable_password": "true",
            "password1": "a-new-pass-phrase-77",
            "password2": "a-new-pass-phrase-77",
        },
    )

    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password("a-new-pass-phrase-77")
    assert not Token.objects.filter(pk=token.pk).exists()


# --- throttles --------------------------------------------------------------------------


def test_token_requests_are_throttled_per_address(settings, alice):
    settings.ANJU_API_TOKEN_RATE = "3/minute"
    for _ in range(3):
        assert ask_token().status_code == 200

    response = ask_token()

    assert response.status_code == 429
    assert response.json() == {"detail": "Request was throttled. Expected available in 60 seconds."}
    assert response["Retry-After"] == "60"
    assert ask_token(ip="192.0.2.99").status_code == 200


def test_the_token_throttle_counts_wrong_passwords_too(settings, alice):
    settings.ANJU_API_TOKEN_RATE = "2/minute"
    settings.ANJU_LOGIN_FAILURE_LIMIT = 100
    ask_token(password="wrong-guess-1")
    ask_token(password="wrong-guess-2")

    assert ask_token().status_code == 429


def test_the_token_throttle_counts_the_forwarded_client_behind_a_trusted_proxy(settings, alice):
    settings.ANJU_API_TOKEN_RATE = "1/minute"
    settings.ANJU_TRUSTED_PROXIES = ["10.0.0.5"]

    def via_proxy(client_ip):
        return ask_token(client=APIClient(REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR=client_ip))

    assert via_proxy("203.0.113.7").status_code == 200
    assert via_proxy("203.0.113.7").status_code == 429
    assert via_proxy("198.51.100.1").status_code == 200


def test_anonymous_api_requests_are_throttled_per_address(settings, db):
    # Only the schema and its docs answer anonymous requests; the rest are 401 before any
    # throttle counts them.
    settings.ANJU_API_ANON_RATE = "2/minute"
    client = APIClient(REMOTE_ADDR="203.0.113.7")
    assert [client.get("/api/docs/").status_code for _ in range(2)] == [200, 200]

    response = client.get("/api/docs/")

    assert response.status_code == 429
    assert response["Retry-After"] == "60"
    assert APIClient(REMOTE_ADDR="192.0.2.99").get("/api/docs/").status_code == 200


def test_signed_in_api_requests_are_throttled_per_user(settings, alice, make_user):
    settings.ANJU_API_USER_RATE = "2/minute"
    client = with_token(token_issue(user=alice).key)
    assert [client.get(PROBE).status_code for _ in range(2)] == [200, 200]

    assert client.get(PROBE).status_code == 429
    assert with_token(token_issue(user=make_user(username="bob")).key).get(PROBE).status_code == 200


def test_an_empty_rate_means_no_limit(settings, db):
    settings.ANJU_API_ANON_RATE = ""
    client = APIClient()

    assert {client.get("/api/docs/").status_code for _ in range(5)} == {200}
