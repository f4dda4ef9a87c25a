"""/api/team/ — members, roles and invitations, the same rules as the portal's Team page."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from django.urls import path
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from api.base import TenantApiView, TenantListApiView, query_choice
from api.errors import Conflict
from tenants.models import Invite, Membership
from tenants.selectors import invite_list, membership_list
from tenants.team import (
    TeamConflict,
    invite_create,
    invite_resend,
    invite_revoke,
    membership_remove,
    membership_role_change,
)


class MemberOutput(serializers.ModelSerializer):
    email = serializers.CharField(source="user.email", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "email", "role", "alert_emails", "created"]


class InviteOutput(serializers.ModelSerializer):
    state = serializers.SerializerMethodField(help_text="pending, accepted, revoked or expired.")

    class Meta:
        model = Invite
        fields = [
            "id",
            "email",
            "role",
            "state",
            "created",
            "sent_at",
            "expires_at",
            "accepted_at",
            "revoked_at",
        ]

    def get_state(self, obj) -> str:
        return obj.state(timezone.now())


class RoleInput(serializers.Serializer):
    role = serializers.ChoiceField(
        choices=Membership.Role.choices, required=False, help_text="The new role; omitted: no change."
    )


class InviteInput(serializers.Serializer):
    email = serializers.EmailField(max_length=150)
    role = serializers.ChoiceField(choices=Membership.Role.choices)


def _team_call(change):
    """Team rules in API words: a refused role 403 (handler), the last owner 409, bad input 400."""
    try:
        return change()
    except TeamConflict as exc:
        raise Conflict(str(exc)) from None
    except DjangoValidationError as exc:
        raise ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else {"detail": exc.messages}
        ) from None


def _base_url(request) -> str:
    return request.build_absolute_uri("/")


class MemberListApi(TenantListApiView):
    """Members of your organisation and their roles (paginated, filtered by role)."""

    @extend_schema(
        operation_id="team_members_list",
        responses=MemberOutput(many=True),
        parameters=[OpenApiParameter("role", str, enum=Membership.Role.values)],
    )
    def get(self, request):
        members = membership_list(tenant=request.tenant).order_by("created", "id")
        if role := query_choice(request, "role", Membership.Role.values):
            members = members.filter(role=role)
        return self.paginated(request, members, MemberOutput)


class MemberDetailApi(TenantApiView):
    """PATCH changes the role (only owners grant or change the owner role; the last owner stays an
    owner: 409); DELETE removes the member (not the last owner: 409)."""

    @extend_schema(operation_id="team_members_retrieve", responses=MemberOutput)
    def get(self, request, member_id):
        return Response(
            MemberOutput(get_object_or_404(membership_list(tenant=request.tenant), pk=member_id)).data
        )

    @extend_schema(
        operation_id="team_members_role", request=RoleInput, responses={200: MemberOutput, 409: None}
    )
    def patch(self, request, member_id):
        member = get_object_or_404(membership_list(tenant=request.tenant), pk=member_id)
        data = RoleInput(data=request.data)
        data.is_valid(raise_exception=True)
        if "role" in data.validated_data:
            member = _team_call(
                lambda: membership_role_change(
                    membership=member, role=data.validated_data["role"], actor=request.membership
                )
            )
        return Response(MemberOutput(member).data)

    @extend_schema(operation_id="team_members_remove", responses={204: None, 409: None})
    def delete(self, request, member_id):
        member = get_object_or_404(membership_list(tenant=request.tenant), pk=member_id)
        _team_call(lambda: membership_remove(membership=member, actor=request.membership))
        return Response(status=status.HTTP_204_NO_CONTENT)


class InviteListApi(TenantListApiView):
    """Invitations (paginated); POST invites an email with a role and sends the link."""

    @extend_schema(
        operation_id="team_invites_list",
        responses=InviteOutput(many=True),
        parameters=[
            OpenApiParameter(
                "open", bool, description="true (default): only invites not accepted nor revoked."
            )
        ],
    )
    def get(self, request):
        open_only = query_choice(request, "open", ["true", "false"]) != "false"
        return self.paginated(request, invite_list(tenant=request.tenant, open_only=open_only), InviteOutput)

    @extend_schema(operation_id="team_invites_create", request=InviteInput, responses={201: InviteOutput})
    def post(self, request):
        data = InviteInput(data=request.data)
        data.is_valid(raise_exception=True)
        invite = _team_call(
            lambda: invite_create(
                tenant=request.tenant,
                email=data.validated_data["email"],
                role=data.validated_data["role"],
                actor=request.membership,
                base_url=_base_url(request),
            )
        )
        return Response(InviteOutput(invite).data, status=status.HTTP_201_CREATED)


class InviteDetailApi(TenantApiView):
    """DELETE revokes the invitation (its link stops working); an accepted one answers 409."""

    @extend_schema(operation_id="team_invites_revoke", responses={204: None, 409: None})
    def delete(self, request, invite_id):
        invite = get_object_or_404(invite_list(tenant=request.tenant), pk=invite_id)
        _team_call(lambda: invite_revoke(invite=invite, actor=request.membership))
        return Response(status=status.HTTP_204_NO_CONTENT)


class InviteResendApi(TenantApiView):
    """A fresh link and expiry, emailed again; an accepted or revoked invitation answers 409."""

    @extend_schema(operation_id="team_invites_resend", request=None, responses={200: InviteOutput, 409: None})
    def post(self, request, invite_id):
        invite = get_object_or_404(invite_list(tenant=request.tenant), pk=invite_id)
        invite = _team_call(
            lambda: invite_resend(invite=invite, actor=request.membership, base_url=_base_url(request))
        )
        return Response(InviteOutput(invite).data)


urlpatterns = [
    path("team/members/", MemberListApi.as_view(), name="api-team-members"),
    path("team/members/<int:member_id>/", MemberDetailApi.as_view(), name="api-team-member"),
    path("team/invites/", InviteListApi.as_view(), name="api-team-invites"),
    path("team/invites/<int:invite_id>/", InviteDetailApi.as_view(), name="api-team-invite"),
    path("team/invites/<int:invite_id>/resend/", InviteResendApi.as_view(), name="api-team-invite-resend"),
]
