from django.contrib.auth import views as auth_views
from django.urls import path

from accounts.views import LogoutView

urlpatterns = [
    path(
        "login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    # Django's LogoutView accepts POST only: a link or an image tag cannot log anyone out.
    path("logout/", LogoutView.as_view(), name="logout"),
]
