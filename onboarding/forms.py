"""The wizard's own small forms (connections use connectors.forms.ConnectionForm)."""

from __future__ import annotations

from django import forms

from syncs.forms import INTERVAL_HELP
from syncs.mapping import CUSTOM_PREFIX, PLACEHOLDER

FIELD_TYPES = (
    ("varchar", "Text"),
    ("text", "Long text"),
    ("double", "Number"),
    ("monetary", "Money"),
    ("date", "Date"),
    ("phone", "Phone"),
)


class FlowsForm(forms.Form):
    kinds = forms.MultipleChoiceField(
        label="What to sync",
        widget=forms.CheckboxSelectMultiple,
        choices=[],
        error_messages={"required": "Choose at least one flow."},
    )

    def __init__(self, *args, kinds: dict, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["kinds"].choices = [
            (
                name,
                f"{kind.label}{' (write-back: Pipedrive → ERP)' if kind.direction != 'to_pipedrive' else ''}",
            )
            for name, kind in kinds.items()
        ]


class MappingAddForm(forms.Form):
    source = forms.CharField(
        max_length=500,
        label="ERP field",
        widget=forms.TextInput(attrs={"list": "sample-fields", "autocomplete": "off"}),
    )
    target = forms.CharField(max_length=200, label="Pipedrive field")

    def clean_source(self):
        source = self.cleaned_data["source"].strip()
        if ("{" in source or "}" in source) and not PLACEHOLDER.search(source):
            raise forms.ValidationError("A template names ERP fields in braces, like {City}.")
        return source

    def clean_target(self):
        target = self.cleaned_data["target"].strip()
        if target.startswith(CUSTOM_PREFIX) and not target[len(CUSTOM_PREFIX) :].strip():
            raise forms.ValidationError("Choose a Pipedrive field.")
        return target


class FieldCreateForm(forms.Form):
    name = forms.CharField(max_length=120, label="New Pipedrive field name")
    field_type = forms.ChoiceField(label="Type", choices=FIELD_TYPES, initial="varchar")

    def clean_name(self):
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise forms.ValidationError("Give the field a name.")
        return name


class ScheduleForm(forms.Form):
    interval_minutes = forms.IntegerField(
        label="Run every (minutes)", min_value=1, max_value=1440, initial=15, help_text=INTERVAL_HELP
    )
