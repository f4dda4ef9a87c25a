from django.urls import path

from alerts import views

urlpatterns = [
    path("", views.alert_list_view, name="alert_list"),
    path("settings/", views.alert_settings_view, name="alert_settings"),
]
