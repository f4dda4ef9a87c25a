"""Bound actions on CustomerOrderSet (the Objstate machine) and PATCH, with If-Match checking.
Callers hold the simulator's lock; each function returns (status, body or None, headers)."""

from __future__ import annotations

from typing import Any

from sandbox.ifs import data
from sandbox.ifs.store import Environment, etag_of, wire

ACTION_PREFIX = f"IfsApp.{data.ORDER_PROJECTION}.CustomerOrder_"
# action → (states it may start from, state it leads to)
TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "Release": (("Planned",), "Released"),
    "Reserve": (("Released",), "Reserved"),
    "Deliver": (("Released", "Reserved"), "Delivered"),
    "Invoice": (("Delivered",), "Invoiced"),
    "Close": (("Delivered", "Invoiced"), "Closed"),
    "Cancel": (("Planned", "Released", "Reserved"), "Cancelled"),
}
PATCHABLE = ("CustomerPoNo", "WantedDeliveryDate")

Result = tuple[int, dict[str, Any] | None, dict[str, str]]


def ifs_error(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Result:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return status, {"error": error}, headers or {}


def check_if_match(
    env: Environment, order: dict[str, Any], if_match: str | None, stats: dict[str, Any]
) -> Result | None:
    """None when the request may go on; else 428 (no If-Match) or 412 (not the current ETag)."""
    if not if_match:
        stats["precondition_required"] += 1
        return ifs_error(
            428,
            "PRECONDITION_REQUIRED",
            "The If-Match header with the record's current ETag is required to change it.",
        )
    if if_match.strip() == "*":
        stats["if_match_any"] += 1
        return None
    current = etag_of(order)
    if current not in [tag.strip() for tag in if_match.split(",")]:
        stats["precondition_failed"] += 1
        return ifs_error(
            412,
            "OBSOLETE_DATA",
            f"The customer order {order['OrderNo']} has been changed by someone else since it was "
            "read. Read it again and retry.",
            headers={"ETag": current},
        )
    return None


def run_action(
    env: Environment, order_no: str, action: str, if_match: str | None, body: Any, stats: dict[str, Any]
) -> Result:
    name = action.removeprefix(ACTION_PREFIX)
    order = env.orders.by_key.get(order_no)
    if not action.startswith(ACTION_PREFIX) or name not in TRANSITIONS:
        return ifs_error(404, "RESOURCE_NOT_FOUND", f"Resource not found for the segment '{action}'.")
    stats["actions_called"] += 1
    by_action = stats["actions"]
    by_action[name] = by_action.get(name, 0) + 1
    per_order = stats["actions_by_order"].setdefault(order_no, {})
    per_order[name] = per_order.get(name, 0) + 1
    if order is None:
        return ifs_error(404, "RESOURCE_NOT_FOUND", f"The customer order {order_no} does not exist.")
    if body is not None and not isinstance(body, dict):
        return ifs_error(400, "BAD_REQUEST", "The action parameters must be a JSON object.")
    refused = check_if_match(env, order, if_match, stats)
    if refused:
        return refused
    sources, target = TRANSITIONS[name]
    state = order["Objstate"]
    if state not in sources:
        stats["invalid_transitions"] += 1
        message = (
            f"The customer order {order_no} is {state}: {name} is only allowed when it is "
            f"{' or '.join(sources)}."
        )
        return ifs_error(
            400,
            "DATABASE_ERROR",
            message,
            [
                {
                    "code": "ORA-20110",
                    "message": f"CustomerOrder.EVENTNOTALLOWED: Event {name} is not allowed in state {state}.",
                }
            ],
        )
    env.touch(order, env.orders, Objstate=target)
    stats["transitions"] += 1
    done = stats["transitions_by_order"].setdefault(order_no, [])
    done.append(f"{state}->{target}")
    return 204, None, {}


def patch_order(
    env: Environment, order_no: str, if_match: str | None, body: Any, stats: dict[str, Any]
) -> Result:
    order = env.orders.by_key.get(order_no)
    if order is None:
        return ifs_error(404, "RESOURCE_NOT_FOUND", f"The customer order {order_no} does not exist.")
    if not isinstance(body, dict):
        return ifs_error(400, "BAD_REQUEST", "The request body must be a JSON object.")
    if "Objstate" in body:
        return ifs_error(
            400,
            "READ_ONLY_ATTRIBUTE",
            "Objstate is read-only: change the order's status with its bound actions.",
        )
    unknown = sorted(k for k in body if k not in PATCHABLE)
    if unknown:
        return ifs_error(
            400, "BAD_REQUEST", f"The property '{unknown[0]}' cannot be changed on CustomerOrder."
        )
    refused = check_if_match(env, order, if_match, stats)
    if refused:
        return refused
    new = env.touch(order, env.orders, **body)
    return 200, wire(new), {"ETag": etag_of(new)}
