"""The SYSPRO simulator at the issue's acceptance size (2,000 customers, 5,000 orders with 1-20 lines):
how long seeding takes and how fast each read path serves, so a slow sync can be told apart from a slow
sandbox.

    python bench/syspro_sandbox.py [--customers 2000] [--orders 5000] [--sorqry 500]

Figures are wall-clock rates from one client thread over loopback (the sandbox is another process).
"""

from __future__ import annotations

import argparse
import json
import time

import requests
from harness import Sandbox

OP, PW = "ADMIN", "bench"


def emit(name: str, value: float, **extra) -> None:
    print(json.dumps({"bench": name, "value": round(value, 4), "database": "none", **extra}), flush=True)


def comfnd(table: str, rows: int, where: str = "", order_by: str = "") -> str:
    return (
        f"<Query><TableName>{table}</TableName><ReturnRows>{rows}</ReturnRows><Columns/>"
        f"<Where>{where}</Where><OrderBy><Column>{order_by}</Column></OrderBy></Query>"
    )


def expr(column: str, condition: str, value: str, andor: str = "") -> str:
    return (
        f"<Expression>{f'<AndOr>{andor}</AndOr>' if andor else ''}<Column>{column}</Column>"
        f"<Condition>{condition}</Condition><Value>{value}</Value></Expression>"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--sorqry", type=int, default=500)
    args = parser.parse_args()
    sandbox = Sandbox()
    try:
        started = time.perf_counter()
        info = sandbox.control(
            "POST",
            "syspro/companies",
            json={
                "company_id": "SYS",
                "operator": OP,
                "password": PW,
                "customers": args.customers,
                "orders": args.orders,
                "lines_max": 20,
                "seed": 1,
            },
        )
        size = {"customers": args.customers, "orders": args.orders, "lines": info["counts"]["SorDetail"]}
        emit("syspro_sandbox_seed_s", time.perf_counter() - started, **size)
        http = requests.Session()
        base = f"{sandbox.url}/SYSPROWCFService/Rest"
        uid = http.get(
            f"{base}/Logon", params={"Operator": OP, "OperatorPassword": PW, "CompanyId": "SYS"}
        ).text

        def query(bo: str, xml_in: str) -> str:
            text = http.get(
                f"{base}/Query/Query", params={"UserId": uid, "BusinessObject": bo, "XmlIn": xml_in}
            ).text
            assert not text.startswith("ERROR"), text
            return text

        started, last, orders = time.perf_counter(), "", 0
        while True:
            page = query(
                "COMFND",
                comfnd("SorMaster", 1000, expr("SalesOrder", "GT", last) if last else "", "SalesOrder"),
            )
            rows = page.count("<Row>")
            if not rows:
                break
            orders += rows
            last = page.rsplit("<SalesOrder>", 1)[1].split("<", 1)[0]
        emit("syspro_comfnd_orders_per_s", orders / (time.perf_counter() - started), rows=orders, page=1000)

        started, lines = time.perf_counter(), 0
        for first in range(1, args.orders + 1, 100):
            where = expr("SalesOrder", "GE", f"{first:06d}") + expr(
                "SalesOrder", "LE", f"{first + 99:06d}", "And"
            )
            lines += query("COMFND", comfnd("SorDetail", 5000, where, "SalesOrder")).count("<Row>")
        emit(
            "syspro_comfnd_lines_per_s",
            lines / (time.perf_counter() - started),
            rows=lines,
            orders_per_call=100,
        )

        started = time.perf_counter()
        for n in range(1, args.sorqry + 1):
            query(
                "SORQRY",
                f"<Query><Key><SalesOrder>{n:06d}</SalesOrder></Key><Option>"
                "<IncludeStockedLines>Y</IncludeStockedLines></Option></Query>",
            )
        emit("syspro_sorqry_per_s", args.sorqry / (time.perf_counter() - started), calls=args.sorqry)
        http.get(f"{base}/Logoff", params={"UserId": uid})

        started, link, records, calls = time.perf_counter(), f"{sandbox.url}/SysproOData/SYS/SorDetail", 0, 0
        while link:
            body = http.get(link, auth=(OP, PW)).json()
            records, calls, link = records + len(body["value"]), calls + 1, body.get("@odata.nextLink")
        emit("syspro_odata_lines_per_s", records / (time.perf_counter() - started), rows=records, calls=calls)
        stats = sandbox.control("GET", "syspro/stats")
        emit("syspro_sandbox_writes", stats["writes"], sessions_active=stats["sessions_active"])
    finally:
        sandbox.stop()


if __name__ == "__main__":
    main()
