"""Where flow kinds come from: the system registry (connectors/registry.py) names each ERP's flows
module, which exports FLOW_KINDS."""

from __future__ import annotations

from connectors.base import FlowKind
from connectors.registry import flow_kinds, flow_systems

__all__ = ["flow_kinds", "flow_kind_get", "flow_kind_choices"]


def flow_kind_get(*, system: str, name: str) -> FlowKind:
    try:
        return flow_kinds(system)[name]
    except KeyError:
        raise LookupError(f"{system} has no flow kind {name!r}") from None


def flow_kind_choices() -> list[tuple[str, str]]:
    return [(f"{system}:{kind.name}", kind.label) for system in flow_systems() for kind in flow_kinds(system).values()]
