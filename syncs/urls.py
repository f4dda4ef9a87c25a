from django.urls import path

from syncs import dashboard_views, replay_views, views, webhook_event_views

urlpatterns = [
    path("flows/", views.flow_list_view, name="flow_list"),
    path("flows/new/", views.flow_create_view, name="flow_create"),
    path("flows/new/kinds/", views.flow_kind_options, name="flow_kind_options"),
    path("flows/<int:id>/", views.flow_detail, name="flow_detail"),
    path("flows/<int:id>/live/", views.flow_live_view, name="flow_live"),
    path("flows/<int:id>/mappings/", views.flow_mappings_view, name="flow_mappings"),
    path("flows/<int:id>/mappings/row/", views.flow_mapping_row, name="flow_mapping_row"),
    path("flows/<int:id>/stages/", views.flow_stage_actions_view, name="flow_stage_actions"),
    path("flows/<int:id>/schedule/", views.flow_schedule_view, name="flow_schedule"),
    path("flows/<int:id>/run/", views.flow_run_now, name="flow_run_now"),
    path("flows/<int:id>/pause/", views.flow_pause_view, name="flow_pause"),
    path("flows/<int:id>/resync/", views.flow_resync_view, name="flow_resync"),
    path("flows/<int:id>/resume/", views.flow_resume_view, name="flow_resume"),
    path("runs/", views.run_list_view, name="run_list"),
    path("runs/<int:id>/", views.run_detail, name="run_detail"),
    path("runs/<int:id>/progress/", views.run_progress_view, name="run_progress"),
    path("runs/<int:id>/replay/", views.run_replay_view, name="run_replay"),
    path("records/", views.record_list_view, name="record_list"),
    path("records/<int:id>/", views.record_detail, name="record_detail"),
    path("records/<int:id>/replay/", views.record_replay_view, name="record_replay"),
    path("dashboard/", dashboard_views.dashboard, name="dashboard"),
    path("dashboard/flows/", dashboard_views.dashboard_flows, name="dashboard_flows"),
    path("records/replay/", replay_views.records_replay_selection_view, name="records_replay_selection"),
    path("flows/<int:id>/replay-failures/", replay_views.flow_replay_failures_view, name="flow_replay_failures"),
    path("webhook-events/", webhook_event_views.webhook_event_list_view, name="webhook_event_list"),
    path("webhook-events/<int:id>/reprocess/", webhook_event_views.webhook_event_reprocess_view,
         name="webhook_event_reprocess"),
]
