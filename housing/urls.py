from django.contrib.auth.decorators import login_required
from django.urls import path
from django.views.generic import RedirectView

from housing import views

app_name = "housing"

urlpatterns = [
    path(
        "",
        login_required(RedirectView.as_view(pattern_name="housing:household_list")),
        name="home",
    ),
    path("households/", views.household_list_view, name="household_list"),
]
