"""Support staff's admin. `TenantScopedAdmin` is the base of every tenant-owned model's admin.

    from tenants.admin import TenantScopedAdmin, TenantScopedMixin

    @admin.register(SyncRun)
    class SyncRunAdmin(TenantScopedAdmin):          # a ModelAdmin; (TenantScopedAdmin, admin.ModelAdmin) works too
        tenant_field = "tenant"                     # or a path: "flow__tenant" for FieldMapping

    class FieldMappingInline(TenantScopedMixin, admin.TabularInline):   # inlines: the mixin first
        model = FieldMapping
        tenant_field = "flow__tenant"

Superusers see everything. Other staff see only rows of tenants they hold a Membership of (nothing
when they hold none): changelist, change/delete/history views (404 otherwise), bulk actions, FK
dropdowns and raw-id/autocomplete lookups. The tenant becomes a search field and a list filter.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.db.models import Model, QuerySet
from django.http import Http404

from tenants.forms import ThrottledAdminAuthenticationForm
from tenants.models import Membership, Tenant
from tenants.selectors import tenant_list_for_user


class TenantScopedMixin:
    """The scoping, for any ModelAdmin or InlineModelAdmin; put it first in the bases."""

    #: Lookup path from this model to its Tenant ("tenant", "flow__tenant"); "pk" for Tenant itself.
    tenant_field: str = "tenant"

    # -- scoping ---------------------------------------------------------------------------
    @staticmethod
    def tenants_visible(request) -> QuerySet[Tenant] | None:
        """None = all tenants (superuser); otherwise the tenants the staff member belongs to."""
        if request.user.is_superuser:
            return None
        return tenant_list_for_user(user=request.user)

    def tenant_filter(self, request, queryset: QuerySet, field: str | None = None) -> QuerySet:
        field = field or self.tenant_field
        tenants = self.tenants_visible(request)
        if tenants is None:
            return queryset
        if not request.user.is_active or not request.user.is_staff:
            return queryset.none()
        if "__" not in field:
            return queryset.filter(**{f"{field}__in": tenants.values("pk")})
        # A path through a to-many relation would repeat rows; a pk subquery keeps each row once.
        in_scope = queryset.model._default_manager.filter(**{f"{field}__in": tenants.values("pk")}).values("pk")
        return queryset.filter(pk__in=in_scope)

    def get_queryset(self, request):
        return self.tenant_filter(request, super().get_queryset(request))

    def get_object(self, request, object_id, from_field=None):
        """Objects outside the scope (or unknown ids) are 404s, not a redirect to the index."""
        obj = super().get_object(request, object_id, from_field)  # already through get_queryset
        if obj is None:
            raise Http404("No such object.")
        return obj

    # -- related choices -------------------------------------------------------------------
    def related_tenant_field(self, model: type[Model]) -> str | None:
        """How a related model reaches Tenant, or None when it is not tenant-owned."""
        if model is Tenant:
            return "pk"
        if model is get_user_model():
            return "memberships__tenant"
        registered = self.admin_site._registry.get(model)
        if isinstance(registered, TenantScopedMixin):
            return registered.tenant_field
        if any(f.name == "tenant" for f in model._meta.get_fields()):
            return "tenant"
        return None

    def _scope_formfield(self, request, formfield):
        queryset = getattr(formfield, "queryset", None)
        if queryset is not None:
            field = self.related_tenant_field(queryset.model)
            if field:
                formfield.queryset = self.tenant_filter(request, queryset, field)
        return formfield

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        return self._scope_formfield(request, super().formfield_for_foreignkey(db_field, request, **kwargs))

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        return self._scope_formfield(request, super().formfield_for_manytomany(db_field, request, **kwargs))

    # -- search and filters ----------------------------------------------------------------
    def get_search_fields(self, request):
        fields = list(super().get_search_fields(request))
        if self.tenant_field != "pk":
            fields += [f for f in (f"{self.tenant_field}__name", f"{self.tenant_field}__slug") if f not in fields]
        return fields

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        if self.tenant_field != "pk" and self.tenant_field not in filters:
            # RelatedOnly: the filter lists only tenants present in the (scoped) changelist.
            filters.insert(0, (self.tenant_field, admin.RelatedOnlyFieldListFilter))
        return filters


class TenantScopedAdmin(TenantScopedMixin, admin.ModelAdmin):
    """A ModelAdmin scoped to the staff member's tenants (see the module docstring)."""


class MembershipInline(TenantScopedMixin, admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("user", "role", "created")
    readonly_fields = ("created",)
    raw_id_fields = ("user",)


@admin.register(Tenant)
class TenantAdmin(TenantScopedAdmin):
    tenant_field = "pk"
    list_display = ("name", "slug", "created")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    inlines = [MembershipInline]

    def get_inlines(self, request, obj):
        # Other apps add read-only inlines here (connections, flows) without importing each other.
        return [*self.inlines, *TENANT_EXTRA_INLINES]

    def has_add_permission(self, request):
        return request.user.is_superuser  # staff scoped to tenants cannot mint new ones

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_delete_permission(request, obj)


#: Inline classes shown on the Tenant page; apps append theirs from their admin.py.
TENANT_EXTRA_INLINES: list = []


@admin.register(Membership)
class MembershipAdmin(TenantScopedAdmin):
    list_display = ("user", "tenant", "role", "created")
    list_filter = ("role",)
    search_fields = ("user__username", "user__email")
    raw_id_fields = ("user",)
    list_select_related = ("user", "tenant")


User = get_user_model()
try:
    admin.site.unregister(User)
except admin.sites.NotRegistered:
    pass


@admin.register(User)
class UserAdmin(TenantScopedMixin, DjangoUserAdmin):
    """Staff see and edit only users who cannot reach further than they can: every membership inside the
    staff member's own tenants, never a superuser, never another staff member holding permissions the
    editor lacks. Rights (staff, superuser, groups, permissions) are read-only for them. Out-of-scope
    users are 404s on every view, the password-change view included."""

    tenant_field = "memberships__tenant"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)  # users with a membership in one of my tenants
        tenants = self.tenants_visible(request)
        if tenants is None:
            return queryset
        queryset = (queryset.exclude(is_superuser=True)
                    .exclude(memberships__in=Membership.objects.exclude(tenant__in=tenants.values("pk"))))
        mine = request.user.get_all_permissions()
        wider_staff = [u.pk for u in queryset.filter(is_staff=True).exclude(pk=request.user.pk)
                       if not u.get_all_permissions() <= mine]
        return queryset.exclude(pk__in=wider_staff)

    def _in_scope(self, request, obj) -> bool:
        return obj is None or self.get_queryset(request).filter(pk=obj.pk).exists()

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._in_scope(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._in_scope(request, obj)

    def get_list_filter(self, request):
        return [*DjangoUserAdmin.list_filter]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields += ["is_staff", "is_superuser", "groups", "user_permissions"]
        return fields


class SuperuserOnlyMixin:
    """Admin pages only superusers open: for models whose rows act outside any tenant."""

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request, *args):
        return request.user.is_superuser and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_delete_permission(request, obj)


def superuser_only_reregister(*, app_label: str = "", models: tuple = ()) -> None:
    """Swap the admin of each of `models` (or every model of `app_label`) for a superuser-only one."""
    for model, model_admin in list(admin.site._registry.items()):
        if model in models or model._meta.app_label == app_label:
            admin.site.unregister(model)
            admin.site.register(model, type(f"SuperuserOnly{type(model_admin).__name__}",
                                            (SuperuserOnlyMixin, type(model_admin)), {}))


# django-q2's Schedule admin takes any dotted path, i.e. runs arbitrary code on the workers, and its
# task lists span every tenant. Groups carry permissions: a staff member editing one they belong to
# would grant themselves more.
superuser_only_reregister(app_label="django_q")
superuser_only_reregister(models=(Group,))

# /admin/login/ counts failures and locks out like the portal's sign-in (same limiter, same cache).
admin.site.login_form = ThrottledAdminAuthenticationForm
