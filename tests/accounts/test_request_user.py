"""The session and its signed-in user are read together by one precompiled statement
(accounts.sessions, accounts.backends, accounts.middleware) and must behave exactly as
Django's own store and backend: the session data decides who is signed in."""

import datetime
import importlib

import pytest
from django.apps import apps
from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DjangoSessionStore
from django.contrib.sessions.models import Session as DjangoSession
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.backends import ModelBackend, user_by_pk
from accounts.models import Role, Session, User
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


def test_the_session_is_read_with_its_user_by_one_statement_and_expires(client, make_user):
    user = make_user(username="sessioned")
    client.force_login(user)
    key = client.cookies["sessionid"].value
    assert Session.objects.get(pk=key).user_id == user.pk
    with CaptureQueriesContext(connection) as queries:
        store = SessionStore(key)
        data = store.load()
    assert data[SESSION_KEY] == str(user.pk)
    assert len(queries.captured_queries) == 1
    assert store.loaded_user == user
    for field in User._meta.concrete_fields:
        assert getattr(store.loaded_user, field.attname) == getattr(user, field.attname)
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


def test_a_signed_in_request_reads_its_session_and_user_in_one_statement(
    client, make_user, regions
):
    user = make_user(Role.COUNTY_OFFICIAL, [regions["county"]], username="onetrip")
    client.force_login(user)
    client.get(reverse("housing:household_list"))
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("housing:household_list"))
    assert response.status_code == 200 and response.context["user"] == user
    sessions = [q["sql"] for q in queries.captured_queries if "accounts_session" in q["sql"]]
    assert len(sessions) == 1
    assert not any(
        q["sql"].lstrip().startswith('SELECT "accounts_user"."id"')
        for q in queries.captured_queries
    ), "the user was read a second time"


def test_the_session_data_not_the_joined_user_decides_who_is_signed_in(client, make_user, regions):
    signed_in = make_user(Role.COUNTY_OFFICIAL, [regions["county"]], username="signed_in")
    other = make_user(Role.COUNTY_OFFICIAL, [regions["county"]], username="other")
    client.force_login(signed_in)
    key = client.cookies["sessionid"].value
    # The join hint says someone else (as a row written by hand would): it is ignored and the
    # user the session data names is read on its own.
    Session.objects.filter(pk=key).update(user=other)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse("housing:household_list"))
    assert response.status_code == 200
    assert response.context["user"] == signed_in
    assert any(
        q["sql"].lstrip().startswith('SELECT "accounts_user"."id"')
        for q in queries.captured_queries
    )
    # No user on the row: the same.
    Session.objects.filter(pk=key).update(user=None)
    assert client.get(reverse("housing:household_list")).context["user"] == signed_in


def test_a_signed_out_session_has_no_user_and_a_deleted_user_takes_their_sessions(
    client, make_user
):
    user = make_user(username="leaving")
    store = SessionStore()
    store["cart"] = "anything"
    store.create()
    assert Session.objects.get(pk=store.session_key).user_id is None
    assert SessionStore(store.session_key).load() == {"cart": "anything"}
    client.force_login(user)
    key = client.cookies["sessionid"].value
    user.delete()
    assert not Session.objects.filter(pk=key).exists()
    assert Session.objects.filter(pk=store.session_key).exists()


def test_an_inactive_user_read_with_the_session_is_not_signed_in(client, make_user):
    user = make_user(username="paused")
    client.force_login(user)
    User.objects.filter(pk=user.pk).update(is_active=False)
    response = client.get(reverse("housing:household_list"))
    assert response.status_code == 302 and reverse("login") in response["Location"]


def test_the_upgrade_copies_live_sessions_with_their_users(make_user):
    migration = importlib.import_module("accounts.migrations.0003_session")
    user = make_user(username="upgraded")
    now = timezone.now()
    live = DjangoSessionStore()
    live.update({SESSION_KEY: str(user.pk), "kept": 1})
    live.create()
    anonymous = DjangoSessionStore()
    anonymous["kept"] = 2
    anonymous.create()
    expired = DjangoSessionStore()
    expired[SESSION_KEY] = str(user.pk)
    expired.create()
    DjangoSession.objects.filter(pk=expired.session_key).update(
        expire_date=now - datetime.timedelta(seconds=1)
    )

    migration.copy_live_sessions(apps, None)

    copied = {s.session_key: s for s in Session.objects.all()}
    assert set(copied) == {live.session_key, anonymous.session_key}
    assert copied[live.session_key].user_id == user.pk
    assert copied[anonymous.session_key].user_id is None
    # Read by the new store as they were: nobody is signed out by the upgrade.
    assert SessionStore(live.session_key).load() == {SESSION_KEY: str(user.pk), "kept": 1}
    assert SessionStore(anonymous.session_key).load() == {"kept": 2}


def test_the_daily_sweep_deletes_expired_sessions_only(client, make_user):
    from accounts.tasks import sessions_clear_expired

    client.force_login(make_user(username="stays"))
    live = client.cookies["sessionid"].value
    gone = SessionStore()
    gone[SESSION_KEY] = "1"
    gone.create()
    Session.objects.filter(pk=gone.session_key).update(
        expire_date=timezone.now() - datetime.timedelta(minutes=1)
    )
    sessions_clear_expired()
    assert list(Session.objects.values_list("pk", flat=True)) == [live]
