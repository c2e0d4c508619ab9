import pytest
from django.core.exceptions import ValidationError

from accounts.models import Role, User
from accounts.services import user_create
from tests.factories import make_region

PASSWORD = "field-survey-2026"


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.mark.django_db
def test_administrator_gets_the_django_admin_and_superuser_rights():
    user = user_create(username="boss", password=PASSWORD, role=Role.ADMINISTRATOR)

    user.refresh_from_db()
    assert (user.role, user.is_staff, user.is_superuser) == ("administrator", True, True)
    assert user.check_password(PASSWORD)
    assert list(user.regions.all()) == []


@pytest.mark.django_db
@pytest.mark.parametrize(
    "role", [Role.INSPECTOR, Role.TOWNSHIP_OFFICIAL, Role.COUNTY_OFFICIAL, Role.AUDITOR]
)
def test_other_roles_get_neither_staff_nor_superuser_and_keep_their_regions(role):
    township = make_region("520399100", "松岩镇")
    user = user_create(
        username="someone",
        password=PASSWORD,
        role=role,
        regions=[township],
        email="someone@example.org",
        first_name="明",
        last_name="李",
    )

    user.refresh_from_db()
    assert (user.role, user.is_staff, user.is_superuser) == (role.value, False, False)
    assert [r.code for r in user.regions.all()] == ["520399100"]
    assert (user.email, user.first_name, user.last_name) == ("someone@example.org", "明", "李")
    assert user.check_password(PASSWORD)


@pytest.mark.django_db
def test_an_unknown_role_is_refused_and_nothing_is_created():
    with pytest.raises(ValidationError) as caught:
        user_create(username="someone", password=PASSWORD, role="boss")

    assert caught.value.message_dict == {"role": ["Value 'boss' is not a valid choice."]}
    assert not User.objects.exists()


@pytest.mark.django_db
def test_a_taken_username_is_refused():
    user_create(username="someone", password=PASSWORD, role=Role.INSPECTOR)

    with pytest.raises(ValidationError) as caught:
        user_create(username="someone", password=PASSWORD, role=Role.AUDITOR)

    assert caught.value.message_dict == {"username": ["A user with that username already exists."]}
    assert User.objects.get().role == Role.INSPECTOR


@pytest.mark.django_db
def test_a_password_the_validators_reject_is_refused_and_nothing_is_created():
    with pytest.raises(ValidationError) as caught:
        user_create(username="someone", password="12345", role=Role.INSPECTOR)

    assert caught.value.messages == [
        "This password is too short. It must contain at least 12 characters.",
        "This password is too common.",
        "This password is entirely numeric.",
        "This password must contain at least one letter and at least one digit.",
    ]
    assert not User.objects.exists()


def test_chinese_full_name_reads_family_name_first():
    from accounts.models import User

    assert User(first_name="刚", last_name="陈").get_full_name() == "陈刚"
    assert User(first_name="Ada", last_name="Lovelace").get_full_name() == "Ada Lovelace"
