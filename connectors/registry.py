"""Every system ml-connector knows, one line each. Adding a system = its package under connectors/
plus one line in SYSTEMS.

From that line come: the connection choices (Connection.System), the portal form and API fields (the
package's CONNECTION_FIELDS), the client (`connector_for`) and the flow kinds (`flow_kinds`). A line
with no client still lets tenants store connections (the portal lists the system; a test says "not
available yet").

A package's `__init__.py` exports CONNECTION_FIELDS (a tuple of connectors.base.SystemField) and may
export DEFAULT_BASE_URL, INTERNAL_OPTIONS (options ml-connector writes itself) and LEARNED_OPTIONS
(forgotten when the URL or credentials change). It imports nothing but the connector contract, so
reading it never loads a client.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import import_module
from typing import Any


@dataclass(frozen=True)
class System:
    key: str  # stored in Connection.system; the package is connectors.<key>
    label: str
    client: str = ""  # "<module>.<Class>" inside the package; empty: no client yet
    flows: str = ""  # module inside the package exporting FLOW_KINDS (ERPs with flows)

    @property
    def package(self) -> str:
        return f"connectors.{self.key}"


# The order is the portal's (and the stored choices'): changing it changes a migration.
SYSTEMS = (
    System("syspro", "SYSPRO 8", client="client.SysproClient", flows="flows"),
    System("sap_b1", "SAP Business One", client="client.SapB1Client", flows="flows"),
    System("sage300", "Sage 300", client="client.Sage300Client", flows="flows"),
    System("ifs", "IFS Cloud", client="client.IfsClient", flows="flows"),
    System("s4hana", "SAP S/4HANA", client="client.S4HanaClient", flows="flows"),
    System("pipedrive", "Pipedrive", client="client.PipedriveClient"),
)
_BY_KEY = {system.key: system for system in SYSTEMS}


def system_get(key: str) -> System:
    try:
        return _BY_KEY[key]
    except KeyError:
        raise LookupError(f"Unknown system {key!r}") from None


def system_choices() -> list[tuple[str, tuple[str, str]]]:
    """Members for Connection.System (TextChoices): ("SAGE300", ("sage300", "Sage 300")), ..."""
    return [(system.key.upper(), (system.key, system.label)) for system in SYSTEMS]


def package_attr(key: str, name: str, default: Any = None) -> Any:
    """A setting the system's package exports (CONNECTION_FIELDS, DEFAULT_BASE_URL, ...)."""
    return getattr(import_module(system_get(key).package), name, default)


def connection_fields(key: str) -> tuple:
    return tuple(package_attr(key, "CONNECTION_FIELDS", ()))


@cache
def connector_class(system: str):
    dotted = system_get(system).client
    if not dotted:
        raise LookupError(f"No connector for system {system!r} yet")
    module, _, name = dotted.rpartition(".")
    return getattr(import_module(f"{system_get(system).package}.{module}"), name)


def connector_for(connection):
    """The client for a Connection row (credentials decrypted only here, in memory)."""
    return connector_class(connection.system).from_connection(connection)


def flow_kinds(system: str) -> dict:
    """{name: FlowKind} of an ERP system ({} for one without flows, or unknown)."""
    entry = _BY_KEY.get(system)
    if entry is None or not entry.flows:
        return {}
    return import_module(f"{entry.package}.{entry.flows}").FLOW_KINDS


def flow_systems() -> list[str]:
    return [system.key for system in SYSTEMS if system.flows]
