"""One registry line per system: connection choices, portal/API fields, client and flow kinds all come
from connectors/registry.py and the system's own package."""

import ast
from pathlib import Path

import pytest

from connectors import registry
from connectors.base import FlowKind, SystemField
from connectors.models import Connection
from connectors.services import SYSTEM_FIELDS
from syncs.kinds import flow_kind_choices

ROOT = Path(__file__).resolve().parents[2]


def test_connection_choices_and_fields_come_from_the_registry():
    keys = [system.key for system in registry.SYSTEMS]
    assert Connection.System.values == keys
    assert dict(Connection.System.choices) == {s.key: s.label for s in registry.SYSTEMS}
    assert list(SYSTEM_FIELDS) == keys
    for system in registry.SYSTEMS:
        fields = SYSTEM_FIELDS[system.key]
        assert fields and all(isinstance(f, SystemField) for f in fields), system.key
        assert fields == registry.connection_fields(system.key)
        assert len({f.key for f in fields}) == len(fields), f"{system.key}: a key twice"


def test_clients_and_flow_kinds_come_from_the_registry():
    with_flows = {s.key for s in registry.SYSTEMS if s.flows}
    assert with_flows == {"sage300", "sap_b1", "syspro", "ifs", "s4hana"}
    assert {value.split(":")[0] for value, _ in flow_kind_choices()} == with_flows
    for system in registry.SYSTEMS:
        kinds = registry.flow_kinds(system.key)
        assert all(isinstance(k, FlowKind) and k.system == system.key for k in kinds.values())
        if not system.client:
            with pytest.raises(LookupError):
                registry.connector_class(system.key)
            continue
        client = registry.connector_class(system.key)
        assert callable(client.from_connection)
        if system.flows:  # ERP clients are context managers: the engine and tests close them with `with`
            assert hasattr(client, "__enter__") and hasattr(client, "__exit__")


def test_a_system_without_a_client_is_listed_but_not_testable(tenant, monkeypatch):
    """Every ERP has a client today; a registry line with fields only (how the next ERP starts) still lets
    tenants store connections, and Test connection says so in plain words."""
    from connectors.services import connection_create, connection_ping

    key = "ifs"
    monkeypatch.setitem(registry._BY_KEY, key, registry.System(key, "IFS Cloud"))
    registry.connector_class.cache_clear()
    try:
        values = {f.key: "x-value" for f in SYSTEM_FIELDS[key]}
        connection = connection_create(
            tenant=tenant, system=key, name=key, base_url="http://127.0.0.1:9",
            options={k: v for k, v in values.items() if not _secret(key, k)},
            credentials={k: v for k, v in values.items() if _secret(key, k)})
        result = connection_ping(connection=connection)
        assert not result.ok and "not available yet" in result.message
    finally:
        registry.connector_class.cache_clear()


def test_system_packages_import_only_the_connector_contract():
    """Reading a package's CONNECTION_FIELDS must never load a client, sandbox or engine code."""
    for system in registry.SYSTEMS:
        tree = ast.parse((ROOT / "connectors" / system.key / "__init__.py").read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert imported <= {"connectors.base", "__future__"}, (system.key, imported)


def _secret(system: str, key: str) -> bool:
    return next(f for f in SYSTEM_FIELDS[system] if f.key == key).secret
