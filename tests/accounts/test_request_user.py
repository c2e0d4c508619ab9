"""The session and the signed-in user are read by precompiled statements (accounts.sessions,
accounts.backends) and must behave exactly as Django's own store and backend."""

import datetime

import pytest
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.backends import ModelBackend, user_by_pk
from accounts.models import Role, User
from accounts.sessions import SessionStore

pytestmark = pytest.mark.django_db


def test_the_user_is_the_one_the_orm_reads(make_user, regions):
    user = make_user(Role.COUNTY_OFFICIAL, [regions["county"]], username="reader")
    user.last_login = timezone.now().replace(microsecond=123456)
    user.is_staff = True
    user.save()
    expected = User.objects.get(pk=user.pk)
    got = user_by_pk(user.pk)
    for field in User._meta.concrete_fields:
        value = getattr(got, field.attname)
        assert value == getattr(expected, field.attname), field.name
        assert type(value) is type(getattr(expected, field.attname)), field.name
    assert got._state.db == expected._state.db and not got._state.adding
    assert user_by_pk(user.pk + 1000) is None


def test_an_inactive_user_is_not_signed_in(client, make_user):
    user = make_user(username="gone")
    client.force_login(user)
    assert ModelBackend().get_user(user.pk) == user
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert ModelBackend().get_user(user.pk) is None
    response = client.get(reverse("housing:household_list"))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_the_session_is_read_by_one_statement_and_expires(client, make_user):
    user = make_user(username="sessioned")
    client.force_login(user)
    key = client.cookies["sessionid"].value
    with CaptureQueriesContext(connection) as queries:
        data = SessionStore(key).load()
    assert data[SESSION_KEY] == str(user.pk)
    assert len(queries.captured_queries) == 1
    # An expired session is no session: empty, and its key forgotten (as Django's store).
    Session.objects.filter(pk=key).update(
        expire_date=timezone.now() - datetime.timedelta(seconds=1)
    )
    store = SessionStore(key)
    assert store.load() == {}
    assert store.session_key is None
    response = client.get(reverse("housing:household_list"))
    assert response.status_code == 302


def test_a_signed_in_page_and_logout_work_through_both(client, make_user, regions):
    user = make_user(Role.COUNTY_OFFICIAL, [regions["county"]], username="walker")
    client.force_login(user)
    assert client.get(reverse("housing:household_list")).status_code == 200
    key = client.cookies["sessionid"].value
    client.post(reverse("logout"))
    assert not Session.objects.filter(pk=key).exists()
    assert SessionStore(key).load() == {}
    assert client.get(reverse("housing:household_list")).status_code == 302
