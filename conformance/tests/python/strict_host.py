"""An agent on the Python SDK's host that passes every MUST case of the
conformance suite: the echo agent of host.py, plus the two checks the SDK
leaves to the handler (an empty prompt, §5.1; attachment content that is
not standard padded base64 without whitespace, §5.2), each refused with 400.

    python strict_host.py --server URL [--owner O] [--name N]

Prints "ready <instance id>" once registered, then serves until killed.
It is the Python agent the install tests run `nap conformance agent`
against (see xtask/src/install.rs), and the agent under test of the CI
example in conformance/README.md.
"""

import argparse
import asyncio
import binascii
import sys

import nats
from synadia_ai.agent_service import AgentService, RequestRejectedError


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--server", required=True)
    p.add_argument("--owner", default="conformance")
    p.add_argument("--name", default="python-strict")
    p.add_argument("--heartbeat", type=int, default=1)
    args = p.parse_args()

    nc = await nats.connect(servers=args.server)
    service = AgentService(
        agent="pystrict",
        owner=args.owner,
        session_name=args.name,
        nc=nc,
        description="Python SDK echo agent, strict about §5 (conformance)",
        heartbeat_interval_s=args.heartbeat,
    )

    async def echo(envelope, stream) -> None:
        if not envelope.prompt:
            raise RequestRejectedError(400, "prompt must be non-empty (§5.1)")
        for attachment in envelope.attachments or []:
            try:
                attachment.to_bytes()
            except (binascii.Error, ValueError):
                raise RequestRejectedError(
                    400, f"attachment {attachment.filename}: content is not standard base64 (§5.2)"
                ) from None
        await stream.send(f"echo: {envelope.prompt}")

    service.on_prompt(echo)
    await service.start()
    await nc.flush()
    print(f"ready {service.instance_id}", flush=True)
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
