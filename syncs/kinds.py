"""Where flow kinds come from: each ERP package's flows.py exports FLOW_KINDS."""

from __future__ import annotations

from importlib import import_module

from connectors.base import FlowKind

FLOW_MODULES = {
    "sage300": "connectors.sage300.flows",
    "sap_b1": "connectors.sap_b1.flows",
}


def flow_kinds(system: str) -> dict[str, FlowKind]:
    module = FLOW_MODULES.get(system)
    if module is None:
        return {}
    return import_module(module).FLOW_KINDS


def flow_kind_get(*, system: str, name: str) -> FlowKind:
    try:
        return flow_kinds(system)[name]
    except KeyError:
        raise LookupError(f"{system} has no flow kind {name!r}") from None


def flow_kind_choices() -> list[tuple[str, str]]:
    return [(f"{system}:{kind.name}", kind.label) for system in FLOW_MODULES for kind in flow_kinds(system).values()]
