"""Adding a system = one package under connectors/ + one line here."""

from __future__ import annotations

from functools import cache
from importlib import import_module

CONNECTORS = {
    "sage300": "connectors.sage300.client.Sage300Client",
    "sap_b1": "connectors.sap_b1.client.SapB1Client",
    "pipedrive": "connectors.pipedrive.client.PipedriveClient",
}


@cache
def connector_class(system: str):
    try:
        dotted = CONNECTORS[system]
    except KeyError:
        raise LookupError(f"No connector for system {system!r} yet") from None
    module, _, name = dotted.rpartition(".")
    return getattr(import_module(module), name)


def connector_for(connection):
    """The client for a Connection row (credentials decrypted only here, in memory)."""
    return connector_class(connection.system).from_connection(connection)
