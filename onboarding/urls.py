from django.urls import path

from onboarding import views

urlpatterns = [
    path("", views.wizard_start, name="wizard_start"),
    path("erp/", views.wizard_erp, name="wizard_erp"),
    path("pipedrive/", views.wizard_pipedrive, name="wizard_pipedrive"),
    path("pipedrive/oauth/", views.wizard_oauth_restart, name="wizard_oauth_restart"),
    path("pipedrive/oauth/callback/", views.wizard_oauth_callback, name="wizard_oauth_callback"),
    path("forget/<slug:key>/", views.wizard_connection_forget, name="wizard_connection_forget"),
    path("flows/", views.wizard_flows, name="wizard_flows"),
    path("map/<int:flow_id>/", views.wizard_map, name="wizard_map"),
    path("jobs/<int:job_id>/", views.wizard_job_status, name="wizard_job_status"),
    path("schedule/", views.wizard_schedule, name="wizard_schedule"),
]
