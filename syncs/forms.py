"""The portal's flow forms: create a flow, edit its field mappings and schedule, filter runs and records.

Input checks live here (so one submit reports every problem); writes are the views' service calls."""

from __future__ import annotations

import json

from django import forms
from django.urls import reverse

from connectors.models import Connection
from connectors.selectors import connection_list
from syncs.kinds import flow_kind_get, flow_kinds
from syncs.mapping import CUSTOM_PREFIX, PLACEHOLDER, STANDARD_FIELDS
from syncs.models import Flow, SyncRecord, SyncRun, WebhookEvent
from syncs.selectors import RecordFilters, RunFilters, WebhookEventFilters, flow_list

INTERVAL_HELP = "How often the ERP is asked for changes: 1 to 1440 minutes (a day)."
CREATE_FIELDS_HELP = ("Custom fields named in the mappings (custom:&lt;name&gt;) that Pipedrive does not have yet "
                      "are created on the first run. Untick to have those records fail instead.")
ERROR_KINDS = [("permanent", "Permanent (data or mapping)"), ("transient", "Temporary (network, rate limit)"),
               ("auth", "Sign-in rejected")]


def _kind_choices(systems: list[str]) -> list:
    """Flow kinds grouped per ERP system; values are "system:kind" so equal kind names never collide."""
    labels = dict(Connection.System.choices)
    groups = []
    for system in systems:
        kinds = flow_kinds(system)
        if kinds:
            groups.append((labels.get(system, system), [(f"{system}:{k.name}", k.label) for k in kinds.values()]))
    return groups


def kind_options_for(source: Connection | None, systems: list[str]) -> list:
    """The kind choices to offer: the chosen ERP's kinds, or every connected ERP's when none is chosen."""
    if source is not None:
        return _kind_choices([source.system])
    return _kind_choices(systems)


class FlowCreateForm(forms.Form):
    source = forms.ModelChoiceField(queryset=Connection.objects.none(), label="From (ERP)",
                                    empty_label="Choose an ERP connection")
    target = forms.ModelChoiceField(queryset=Connection.objects.none(), label="To (Pipedrive)",
                                    empty_label="Choose a Pipedrive connection")
    kind = forms.ChoiceField(label="What to sync", choices=[])
    name = forms.CharField(max_length=120, required=False,
                           help_text="Optional. Defaults to the description of what it syncs.")
    interval_minutes = forms.IntegerField(label="Run every (minutes)", min_value=1, max_value=1440, initial=15,
                                          help_text=INTERVAL_HELP)
    create_missing_fields = forms.BooleanField(label="Create missing Pipedrive fields", required=False,
                                               initial=True, help_text=CREATE_FIELDS_HELP)
    start_now = forms.BooleanField(
        label="Start syncing now", required=False, initial=True,
        help_text="Untick to review the field mappings first; press Resume when you are ready.")

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        connections = connection_list(tenant=tenant)
        self.fields["source"].queryset = connections.exclude(system=Connection.System.PIPEDRIVE)
        self.fields["target"].queryset = connections.filter(system=Connection.System.PIPEDRIVE)
        self.erp_systems = sorted(set(self.fields["source"].queryset.values_list("system", flat=True)))
        erps = list(self.fields["source"].queryset)
        pipedrives = list(self.fields["target"].queryset)
        if not self.is_bound:
            # One choice is no choice: preselect it.
            if len(erps) == 1:
                self.initial.setdefault("source", erps[0].pk)
            if len(pipedrives) == 1:
                self.initial.setdefault("target", pipedrives[0].pk)
        # htmx: choosing the ERP narrows "What to sync" to what that system offers.
        self.fields["source"].widget.attrs.update({
            "hx-get": reverse("flow_kind_options"), "hx-target": "#id_kind", "hx-trigger": "change"})
        chosen = self._chosen_source(erps)
        self.fields["kind"].choices = kind_options_for(chosen, self.erp_systems)
        self.has_connections = bool(erps) and bool(pipedrives)

    def _chosen_source(self, erps: list[Connection]) -> Connection | None:
        raw = self.data.get("source") if self.is_bound else self.initial.get("source")
        return next((c for c in erps if str(c.pk) == str(raw)), None)

    def clean(self):
        data = super().clean()
        source, kind = data.get("source"), data.get("kind")
        if source is not None and kind:
            system, _, name = kind.partition(":")
            try:
                if system != source.system:
                    raise LookupError
                flow_kind_get(system=source.system, name=name)
            except LookupError:
                self.add_error("kind", f"{source.name} is a {source.get_system_display()} connection; "
                                       "pick something it can sync.")
            else:
                data["kind_name"] = name
        elif source is not None and not flow_kinds(source.system):
            self.add_error("source", f"No flows are available for {source.get_system_display()} yet.")
        return data


class FlowScheduleForm(forms.Form):
    name = forms.CharField(max_length=120)
    interval_minutes = forms.IntegerField(label="Run every (minutes)", min_value=1, max_value=1440,
                                          help_text=INTERVAL_HELP)
    create_missing_fields = forms.BooleanField(label="Create missing Pipedrive fields", required=False,
                                               help_text=CREATE_FIELDS_HELP)

    @classmethod
    def for_flow(cls, flow: Flow, data=None) -> FlowScheduleForm:
        return cls(data, initial={
            "name": flow.name, "interval_minutes": flow.interval_minutes,
            "create_missing_fields": bool((flow.options or {}).get("create_missing_fields", True)),
        })


class StageActionsForm(forms.Form):
    """An action-mode write-back's table, one box per action: the Pipedrive stage ids that run it."""

    def __init__(self, *args, actions: list[str], table: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        for action in actions:
            stages = sorted((int(s) for s, a in (table or {}).items() if a == action))
            self.fields[action] = forms.CharField(
                label=action, required=False, initial=", ".join(str(s) for s in stages),
                help_text=f"Pipedrive stage ids whose deals run {action} on their order, e.g. 3, 7.",
                widget=forms.TextInput(attrs={"placeholder": "stage ids, e.g. 3, 7"}))

    def clean(self):
        data = super().clean()
        table: dict[str, str] = {}
        for action in list(self.fields):
            for part in (data.get(action) or "").replace(";", ",").split(","):
                part = part.strip()
                if not part:
                    continue
                if not part.isdigit() or int(part) <= 0:
                    self.add_error(action, f"“{part}” is not a Pipedrive stage id (a whole number above 0).")
                elif str(int(part)) in table:
                    self.add_error(action, f"Stage {int(part)} already runs {table[str(int(part))]}; a stage runs one "
                                           "action.")
                else:
                    table[str(int(part))] = action
        data["table"] = table
        return data


class MappingForm(forms.Form):
    """One row: where the value comes from, where it goes, an optional lookup table, required or not."""

    id = forms.IntegerField(required=False, widget=forms.HiddenInput)
    source = forms.CharField(max_length=500, label="ERP field or template",
                             widget=forms.TextInput(attrs={"placeholder": "CustomerName or {AddressLine1}, {City}"}))
    target = forms.CharField(max_length=200, label="Pipedrive field",
                             widget=forms.TextInput(attrs={"placeholder": "name, address or custom:<field name>",
                                                           "list": "mapping-targets"}))
    lookup = forms.CharField(required=False, label="Lookup table (JSON)",
                             widget=forms.Textarea(attrs={"rows": 1}))
    required = forms.BooleanField(required=False, label="Required")

    def __init__(self, *args, entity: str, **kwargs):
        self.entity = entity
        super().__init__(*args, **kwargs)

    def clean_source(self):
        source = self.cleaned_data["source"].strip()
        if "{" in source or "}" in source:
            leftover = PLACEHOLDER.sub("", source)
            if not PLACEHOLDER.search(source) or "{" in leftover or "}" in leftover:
                raise forms.ValidationError(
                    "A template names ERP fields in braces, like {AddressLine1}, {City} — letters, digits and _ "
                    "only, every { closed by }.")
        return source

    def clean_target(self):
        target = self.cleaned_data["target"].strip()
        standard = STANDARD_FIELDS.get(self.entity, {})
        if target.lower().startswith(CUSTOM_PREFIX):
            name = target[len(CUSTOM_PREFIX):].strip()
            if not name:
                raise forms.ValidationError("Write the Pipedrive field's name after custom:, e.g. custom:Phone.")
            return CUSTOM_PREFIX + name
        if target not in standard:
            raise forms.ValidationError(
                f"“{target}” is not a Pipedrive {self.entity} field. Use one of {', '.join(sorted(standard))}, "
                "or custom:<field name> for a custom field.")
        return target

    def clean_lookup(self):
        text = self.cleaned_data["lookup"].strip()
        if not text:
            return None
        example = 'Write it like {"A": "Active", "I": "Inactive"}.'
        try:
            table = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(
                f"The lookup table is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno}). {example}"
            ) from None
        if not isinstance(table, dict):
            raise forms.ValidationError(f"The lookup table must be a JSON object of ERP value → Pipedrive value. "
                                        f"{example}")
        if not table:
            raise forms.ValidationError("The lookup table is empty; leave the box empty for no lookup.")
        if any(isinstance(v, (dict, list)) for v in table.values()):
            raise forms.ValidationError("Each Pipedrive value in the lookup table must be text, a number, "
                                        "true/false or null.")
        return table


class BaseMappingFormSet(forms.BaseFormSet):
    def __init__(self, *args, entity: str, **kwargs):
        self.entity = entity
        super().__init__(*args, form_kwargs={"entity": entity}, **kwargs)

    def rows(self) -> list[dict]:
        """The kept rows in display order (blank extra rows and removed rows left out)."""
        return [f.cleaned_data for f in self.forms
                if f.cleaned_data and not f.cleaned_data.get("DELETE") and f.cleaned_data.get("source")]

    def clean(self):
        if any(self.errors):
            return
        seen: dict[str, int] = {}
        for row in self.rows():
            seen[row["target"]] = seen.get(row["target"], 0) + 1
        twice = sorted(t for t, n in seen.items() if n > 1)
        if twice:
            raise forms.ValidationError(f"Two rows write to the same Pipedrive field: {', '.join(twice)}. "
                                        "Keep one (a template can combine several ERP fields).")
        needed = "title" if self.entity == "deals" else "name"
        if needed in STANDARD_FIELDS.get(self.entity, {}) and needed not in seen:
            raise forms.ValidationError(f"Keep a row that fills {needed}: Pipedrive needs it to create "
                                        f"{self.entity}.")


MappingFormSet = forms.formset_factory(MappingForm, formset=BaseMappingFormSet, extra=1, can_delete=True,
                                       max_num=200, validate_max=True)


def mapping_initial(flow: Flow) -> list[dict]:
    return [{"id": m.pk, "source": m.source, "target": m.target, "required": m.required,
             "lookup": "" if m.lookup is None else json.dumps(m.lookup, ensure_ascii=False)}
            for m in flow.mappings.all()]


def _blank(choices) -> list:
    return [("", "Any"), *choices]


class RunFilterForm(forms.Form):
    flow = forms.ModelChoiceField(queryset=Flow.objects.none(), required=False, empty_label="All flows")
    status = forms.ChoiceField(choices=_blank(SyncRun.Status.choices), required=False)
    trigger = forms.ChoiceField(choices=_blank(SyncRun.Trigger.choices), required=False)
    started_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    started_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    q = forms.CharField(required=False, max_length=200, label="Search",
                        widget=forms.TextInput(attrs={"type": "search", "placeholder": "run #, error, external id"}))

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["flow"].queryset = flow_list(tenant=tenant)

    def clean(self):
        data = super().clean()
        start, end = data.get("started_from"), data.get("started_to")
        if start and end and start > end:
            self.add_error("started_to", "The end date is before the start date.")
            data.pop("started_to", None)
        return data

    def filters(self) -> RunFilters:
        """The valid filters; an invalid one (a mistyped date) is reported and left out."""
        self.is_valid()
        data = self.cleaned_data
        flow = data.get("flow")
        return RunFilters(flow_id=flow.pk if flow else None, status=data.get("status") or None,
                          trigger=data.get("trigger") or None, started_from=data.get("started_from"),
                          started_to=data.get("started_to"), search=(data.get("q") or "").strip() or None)


class ReplaySelectionForm(forms.Form):
    """Checked rows of a records table: the audit row ids to replay."""

    record = forms.TypedMultipleChoiceField(coerce=int, error_messages={
        "required": "Tick at least one failed record to replay."})

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        raw = self.data.getlist("record") if hasattr(self.data, "getlist") else []
        self.fields["record"].choices = [(v, v) for v in raw if str(v).isdigit()][:500]

    def clean_record(self):
        ids = self.cleaned_data["record"]
        if len(ids) > 500:
            raise forms.ValidationError("Replay at most 500 records at once.")
        return ids


class WebhookEventFilterForm(forms.Form):
    connection = forms.ModelChoiceField(queryset=Connection.objects.none(), required=False,
                                        empty_label="All Pipedrive connections")
    status = forms.ChoiceField(choices=_blank(WebhookEvent.Status.choices), required=False)
    object = forms.CharField(required=False, max_length=40, label="Object",
                             widget=forms.TextInput(attrs={"placeholder": "e.g. deal"}))
    entity_id = forms.CharField(required=False, max_length=40, label="Record id",
                                widget=forms.TextInput(attrs={"type": "search", "placeholder": "e.g. 42"}))
    duplicates = forms.BooleanField(required=False, label="Only repeated deliveries")

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["connection"].queryset = connection_list(tenant=tenant, system=Connection.System.PIPEDRIVE)

    def filters(self) -> WebhookEventFilters:
        self.is_valid()
        data = self.cleaned_data
        conn = data.get("connection")
        return WebhookEventFilters(connection_id=conn.pk if conn else None, status=data.get("status") or None,
                                   object=(data.get("object") or "").strip() or None,
                                   entity_id=(data.get("entity_id") or "").strip() or None,
                                   duplicates_only=bool(data.get("duplicates")))


class RecordFilterForm(forms.Form):
    flow = forms.ModelChoiceField(queryset=Flow.objects.none(), required=False, empty_label="All flows")
    run = forms.IntegerField(required=False, min_value=1, label="Run #",
                             widget=forms.NumberInput(attrs={"placeholder": "any"}))
    outcome = forms.ChoiceField(choices=_blank(SyncRecord.Outcome.choices), required=False)
    action = forms.ChoiceField(choices=_blank(SyncRecord.Action.choices), required=False)
    error_kind = forms.ChoiceField(choices=_blank(ERROR_KINDS), required=False, label="Error kind")
    external_id = forms.CharField(required=False, max_length=200, label="External id",
                                  widget=forms.TextInput(attrs={"type": "search", "placeholder": "e.g. 1100"}))

    def __init__(self, *args, tenant, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["flow"].queryset = flow_list(tenant=tenant)

    def filters(self) -> RecordFilters:
        """The valid filters; an invalid one (a mistyped run number) is reported and left out."""
        self.is_valid()
        data = self.cleaned_data
        flow = data.get("flow")
        return RecordFilters(flow_id=flow.pk if flow else None, run_id=data.get("run"),
                             outcome=data.get("outcome") or None, action=data.get("action") or None,
                             error_kind=data.get("error_kind") or None,
                             external_id=(data.get("external_id") or "").strip() or None)
