"""A minimal agent on the Python SDK's host, for the conformance suite.

    python host.py --server URL --owner O --name N [--heartbeat SECS]

Prints "ready <instance id>" on stdout once registered, then serves until
killed. It echoes the prompt back.
"""

import argparse
import asyncio
import sys

import nats
from synadia_ai.agent_service import AgentService


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--server", required=True)
    p.add_argument("--owner", default="conformance")
    p.add_argument("--name", default="python-host")
    p.add_argument("--heartbeat", type=int, default=1)
    args = p.parse_args()

    nc = await nats.connect(servers=args.server)
    service = AgentService(
        agent="pyecho",
        owner=args.owner,
        session_name=args.name,
        nc=nc,
        description="Python SDK echo agent (conformance)",
        heartbeat_interval_s=args.heartbeat,
    )

    async def echo(envelope, stream) -> None:
        await stream.send(f"echo: {envelope.prompt}")

    service.on_prompt(echo)
    await service.start()
    print(f"ready {service._service.id}", flush=True)  # noqa: SLF001 - test helper
    try:
        await asyncio.Event().wait()
    finally:
        await service.stop()
        await nc.close()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
