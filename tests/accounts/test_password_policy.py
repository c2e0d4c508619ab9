"""The password policy: a configurable minimum length, letters and digits, Django's checks."""

import os
import subprocess
import sys

import pytest
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError

from accounts.models import Role, User
from accounts.services import user_create
from tests.factories import DEMO_PASSWORD


def problems(password, user=None) -> list[str]:
    try:
        password_validation.validate_password(password, user)
    except ValidationError as error:
        return error.messages
    return []


def test_the_default_minimum_is_twelve_characters():
    assert problems("river-4-bend") == []
    assert problems("river-4-ben") == [
        "This password is too short. It must contain at least 12 characters."
    ]


def test_the_minimum_length_comes_from_the_settings(settings):
    settings.AUTH_PASSWORD_VALIDATORS = [
        {
            "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
            "OPTIONS": {"min_length": 16},
        }
    ]

    assert problems("river-4-bend-ok") == [
        "This password is too short. It must contain at least 16 characters."
    ]


def validators_under(**environment) -> str:
    """AUTH_PASSWORD_VALIDATORS as settings make them from this environment (a fresh process)."""
    code = (
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'config.settings'; "
        "django.setup(); from django.conf import settings; "
        "print([(v['NAME'].rsplit('.', 1)[1], v.get('OPTIONS')) "
        "for v in settings.AUTH_PASSWORD_VALIDATORS])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1]


def test_administrators_set_the_policy_in_the_environment():
    assert validators_under(ANJU_PASSWORD_MIN_LENGTH="20") == (
        "[('UserAttributeSimilarityValidator', None), "
        "('MinimumLengthValidator', {'min_length': 20}), "
        "('CommonPasswordValidator', None), ('NumericPasswordValidator', None), "
        "('LettersAndDigitsValidator', None)]"
    )
    assert "LettersAndDigitsValidator" not in validators_under(
        ANJU_PASSWORD_LETTERS_AND_DIGITS="false"
    )


@pytest.mark.parametrize(
    "password",
    ["correct-horse-battery", "长城长城长城长城长城长城", "4729-1834-5561-0917"],
)
def test_a_password_without_both_letters_and_digits_is_refused(password):
    assert "This password must contain at least one letter and at least one digit." in problems(
        password
    )


@pytest.mark.parametrize("password", ["安居工程验收合格2026年", "Field-Survey-2026"])
def test_letters_of_any_script_with_a_digit_pass(password):
    assert problems(password) == []


def test_the_help_text_lists_the_rule():
    assert (
        "Your password must contain at least one letter and at least one digit."
        in password_validation.password_validators_help_texts()
    )


def test_the_demo_and_test_passwords_satisfy_the_policy(settings):
    assert problems(settings.ANJU_DEMO_PASSWORD) == []
    assert problems(DEMO_PASSWORD) == []


@pytest.mark.django_db
def test_user_create_refuses_a_password_the_policy_rejects_and_creates_nothing():
    with pytest.raises(ValidationError) as caught:
        user_create(username="someone", password="short-1", role=Role.INSPECTOR)

    assert caught.value.messages == [
        "This password is too short. It must contain at least 12 characters."
    ]
    assert not User.objects.exists()
