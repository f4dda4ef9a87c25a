import json

from django import template

register = template.Library()


@register.filter
def json_pretty(value) -> str:
    """A Pipedrive body as it goes over the wire (JSON), indented."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
