"""`python -m sandbox --port 8100` serves every simulated system on one loopback port."""

from __future__ import annotations

import argparse
import importlib
import sys

from sandbox.core import Sandbox, serve

SIMULATORS = {
    "pipedrive": "sandbox.pipedrive.app:PipedriveSimulator",
    "sage300": "sandbox.sage300.app:Sage300Simulator",
    "sap_b1": "sandbox.sap_b1.app:SapB1Simulator",
    "syspro": "sandbox.syspro.app:SysproSimulator",
}


def build(names: list[str] | None = None) -> Sandbox:
    sims = []
    for name, dotted in SIMULATORS.items():
        if names and name not in names:
            continue
        module, _, cls = dotted.partition(":")
        try:
            sims.append(getattr(importlib.import_module(module), cls)())
        except ModuleNotFoundError as exc:
            print(f"sandbox: {name} simulator unavailable ({exc})", file=sys.stderr)
    return Sandbox(sims)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8100)
    parser.add_argument("--only", nargs="*", help="serve only these systems")
    args = parser.parse_args()
    if args.host not in ("127.0.0.1", "::1", "localhost"):
        parser.error("the sandbox listens on loopback only")
    server = serve(build(args.only), args.host, args.port)
    print(f"sandbox listening on http://{args.host}:{args.port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
