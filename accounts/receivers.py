"""Signal receivers that revoke API tokens. Each only notices the event and calls a service.

A password change revokes the user's token whichever way the password was changed (the
admin, the password change form, a service calling set_password, the shell): it is noticed
where the new hash is saved, as Django's own sessions notice it through the session hash.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_save, pre_save

from accounts.services import token_revoke

_CHANGED = "_anju_password_changed"


def revoke_token_on_logout(sender, request, user, **kwargs):
    if user is not None and user.pk is not None:
        token_revoke(user=user)


def note_password_change(sender, instance, raw=False, update_fields=None, **kwargs):
    if raw or instance.pk is None:
        return
    if update_fields is not None and "password" not in update_fields:
        return  # e.g. last_login on every login: no query
    stored = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    setattr(instance, _CHANGED, stored is not None and stored != instance.password)


def revoke_token_on_password_change(sender, instance, created=False, raw=False, **kwargs):
    if getattr(instance, _CHANGED, False):
        setattr(instance, _CHANGED, False)
        token_revoke(user=instance)


def connect():
    user_model = get_user_model()
    user_logged_out.connect(revoke_token_on_logout, dispatch_uid="anju_revoke_token_on_logout")
    pre_save.connect(
        note_password_change, sender=user_model, dispatch_uid="anju_note_password_change"
    )
    post_save.connect(
        revoke_token_on_password_change,
        sender=user_model,
        dispatch_uid="anju_revoke_token_on_password_change",
    )
