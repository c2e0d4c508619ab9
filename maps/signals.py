"""Registry writes that move a household on the map refresh its MapPoint row.

Single saves arrive as post_save/post_delete; bulk writes as housing's households_changed.
The refresh runs in the writer's transaction, so a rolled-back write leaves the map as it was.
"""

from django.db.models.signals import post_delete, post_save, pre_delete
from django.dispatch import receiver

from housing.models import House, Household
from housing.signals import households_changed
from maps import points
from maps.models import MapPoint
from renovation.models import RenovationCase


@receiver(post_save, sender=Household, dispatch_uid="maps_household_saved")
def household_saved(sender, instance, raw=False, **kwargs):
    if not raw:
        points.refresh([instance.pk])


@receiver(pre_delete, sender=Household, dispatch_uid="maps_household_deleting")
def household_deleting(sender, instance, **kwargs):
    points.forget([instance.pk])


@receiver(post_delete, sender=Household, dispatch_uid="maps_household_deleted")
def household_deleted(sender, instance, **kwargs):
    """Its houses go first, and each house's post_delete brought back the row (and counts)
    that pre_delete took out: take them out again now that the household is gone."""
    points.forget([instance.pk])
    MapPoint.objects.filter(pk=instance.pk).delete()


@receiver(post_save, sender=House, dispatch_uid="maps_house_saved")
@receiver(post_delete, sender=House, dispatch_uid="maps_house_deleted")
def house_changed(sender, instance, raw=False, **kwargs):
    if not raw:
        points.refresh([instance.household_id])


@receiver(post_save, sender=RenovationCase, dispatch_uid="maps_case_saved")
@receiver(post_delete, sender=RenovationCase, dispatch_uid="maps_case_deleted")
def case_changed(sender, instance, raw=False, **kwargs):
    if not raw:
        if RenovationCase.house.is_cached(instance):  # the services load it with the case
            household_id = instance.house.household_id
        else:
            household_id = (
                House.objects.filter(pk=instance.house_id)
                .values_list("household_id", flat=True)
                .first()
            )
        if household_id is not None:
            points.refresh([household_id])


@receiver(households_changed, dispatch_uid="maps_households_changed")
def bulk_changed(sender, ids=None, **kwargs):
    points.refresh(ids)
