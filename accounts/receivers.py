"""Signal receivers that revoke API tokens and forget cached scopes. Each only notices the
event and calls a service or the scoping module.

A password change revokes the user's token whichever way the password was changed (the
admin, the password change form, a service calling set_password, the shell): it is noticed
where the new hash is saved, as Django's own sessions notice it through the session hash.

A user's cached region codes (accounts.scoping.cached_region_codes) are forgotten when their
regions change from either side of the relation (user.regions, region.users), when the user
is saved or deleted (role, active), and everyone's when a region is saved or deleted (a code
changed; a deleted region's user rows go without an m2m signal).
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save

from accounts.scoping import forget_region_codes
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


def forget_scope_on_regions_changed(sender, instance, action, reverse, pk_set, **kwargs):
    if action not in ("post_add", "post_remove", "post_clear"):
        return
    if not reverse:
        forget_region_codes([instance.pk])
    else:
        # region.users.clear() names no users: everyone's codes are forgotten.
        forget_region_codes(None if pk_set is None else sorted(pk_set))


def forget_scope_of_user(sender, instance, raw=False, **kwargs):
    if instance.pk is not None:
        forget_region_codes([instance.pk])


def forget_every_scope(sender, instance, raw=False, **kwargs):
    forget_region_codes(None)


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
    m2m_changed.connect(
        forget_scope_on_regions_changed,
        sender=user_model.regions.through,
        dispatch_uid="anju_forget_scope_on_regions_changed",
    )
    post_save.connect(
        forget_scope_of_user, sender=user_model, dispatch_uid="anju_forget_scope_of_saved_user"
    )
    post_delete.connect(
        forget_scope_of_user, sender=user_model, dispatch_uid="anju_forget_scope_of_deleted_user"
    )
    # By name: accounts does not import housing (the User.regions relation names it so too).
    for signal, uid in ((post_save, "saved"), (post_delete, "deleted")):
        signal.connect(
            forget_every_scope, sender="housing.Region", dispatch_uid=f"anju_forget_scopes_{uid}"
        )
