from django.contrib.auth import views as auth_views
from django.urls import path

from tenants import team_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("signup/", views.signup, name="signup"),
    path("signup/sent/", views.signup_sent, name="signup_sent"),
    path("signup/activate/<uidb64>/<token>/", views.signup_activate_view, name="signup_activate"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),  # POST only (Django 5)
    path("password-reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("password-reset/<uidb64>/<token>/", auth_views.PasswordResetConfirmView.as_view(),
         name="password_reset_confirm"),
    path("password-reset/complete/", auth_views.PasswordResetCompleteView.as_view(),
         name="password_reset_complete"),
    # dashboard/ is syncs.dashboard_views.dashboard (it reads flows and budgets: syncs depends on tenants)
    path("settings/api-token/", views.api_token, name="api_token"),
    path("settings/api-token/<int:id>/revoke/", views.api_token_revoke_view, name="api_token_revoke"),
    path("team/", team_views.team_view, name="team"),
    path("team/invite/", team_views.invite_create_view, name="team_invite"),
    path("team/invites/<int:id>/resend/", team_views.invite_resend_view, name="team_invite_resend"),
    path("team/invites/<int:id>/revoke/", team_views.invite_revoke_view, name="team_invite_revoke"),
    path("team/members/<int:id>/role/", team_views.member_role_view, name="team_member_role"),
    path("team/members/<int:id>/remove/", team_views.member_remove_view, name="team_member_remove"),
    path("team/alert-emails/", team_views.alert_emails_view, name="team_alert_emails"),
    path("invite/<str:token>/", team_views.invite_accept_view, name="invite_accept"),
]
