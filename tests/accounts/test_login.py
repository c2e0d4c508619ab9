"""Login and logout pages (django.contrib.auth's views with our templates)."""

import pytest

from tests.factories import DEMO_PASSWORD

pytestmark = pytest.mark.django_db


def test_login_page_shows_the_form_and_the_language_switcher(client):
    response = client.get("/login/")
    assert response.status_code == 200
    page = response.content.decode()
    assert '<form method="post" action="/login/" class="stacked-form">' in page
    assert 'name="username"' in page and 'name="password"' in page
    assert 'action="/i18n/setlang/"' in page
    assert 'href="/households/"' not in page


def test_login_with_the_right_password_goes_to_the_household_list(client, township_official):
    response = client.post(
        "/login/", {"username": township_official.username, "password": DEMO_PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"] == "/households/"
    assert client.get("/households/").status_code == 200


def test_login_returns_to_the_page_asked_for(client, township_official):
    response = client.post(
        "/login/?next=/regions/",
        {"username": township_official.username, "password": DEMO_PASSWORD, "next": "/regions/"},
    )
    assert response["Location"] == "/regions/"


def test_login_with_a_wrong_password_says_so_and_logs_nobody_in(client, township_official):
    response = client.post("/login/", {"username": township_official.username, "password": "x"})
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == [
        "Please enter a correct username and password. Note that both fields may be case-sensitive."
    ]
    assert "_auth_user_id" not in client.session
    assert client.get("/households/").status_code == 302


def test_logout_by_post_logs_out_and_goes_to_login(client, township_official):
    client.force_login(township_official)
    response = client.post("/logout/")
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert client.get("/households/")["Location"] == "/login/?next=/households/"


def test_logout_by_get_is_refused_and_keeps_the_session(client, township_official):
    client.force_login(township_official)
    assert client.get("/logout/").status_code == 405
    assert client.get("/households/").status_code == 200


def test_every_page_offers_logout_by_post_with_the_users_name_and_role(client, township_official):
    client.force_login(township_official)
    page = client.get("/households/").content.decode()
    assert '<form method="post" action="/logout/" class="inline-form">' in page
    assert '<span class="site-user__name">township1</span>' in page
    assert '<span class="site-user__role">Township official</span>' in page
