from django.urls import path

from connectors import views

urlpatterns = [
    path("", views.connection_list_view, name="connection_list"),
    path("new/", views.connection_system_pick, name="connection_system_pick"),
    path("new/<slug:system>/", views.connection_create_view, name="connection_create"),
    path("<int:id>/", views.connection_detail, name="connection_detail"),
    path("<int:id>/edit/", views.connection_update_view, name="connection_update"),
    path("<int:id>/delete/", views.connection_delete_view, name="connection_delete"),
    path("<int:id>/ping/", views.connection_ping_view, name="connection_ping"),
    path("<int:id>/ping/status/", views.connection_ping_status, name="connection_ping_status"),
]
