from django.contrib.auth import views as auth_views
from django.urls import path

from tenants import views

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
]
