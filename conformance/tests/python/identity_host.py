"""An agent on the Python SDK's host with the sender-identity extension
(§13) on, for the identity interop tests.

    python identity_host.py --server URL (--seed-file F | --creds F)
        [--owner O] [--name N] [--agent A] [--min-trust any|signed]
        [--no-identity] [--heartbeat SECS]

The credentials may also come from env NAP_SEED_FILE / NAP_CREDS. With
them the service signs its registration (`id_sig`) and its heartbeats
(`ServiceIdentity(signer=...)`) unless --no-identity is given; it always
classifies senders and serves `min_sender_trust` as given.

Every prompt is answered with one line describing the sender the SDK
classified: `verified {account}.{user}`, `claimed {account}.{user}` or
`absent`. Prints "ready <instance id> <prompt subject>" on stdout once
registered, then serves until killed.
"""

import argparse
import asyncio
import os
import sys

import nats
from synadia_ai.agent_service import AgentService, ServiceIdentity
from synadia_ai.agents import ClaimedSender, VerifiedSender
from synadia_ai.agents.identity import signer_from_creds_file, signer_from_seed


def describe(sender) -> str:
    """The line the agent answers with."""
    if isinstance(sender, VerifiedSender):
        return f"verified {sender.id.account}.{sender.id.user}"
    if isinstance(sender, ClaimedSender):
        return f"claimed {sender.claim.account}.{sender.claim.user}"
    return "absent"


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--server", required=True)
    p.add_argument("--seed-file", default=os.environ.get("NAP_SEED_FILE"))
    p.add_argument("--creds", default=os.environ.get("NAP_CREDS"))
    p.add_argument("--agent", default="echo")
    p.add_argument("--owner", default="alice")
    p.add_argument("--name", default="py-identity")
    p.add_argument("--min-trust", choices=["any", "signed"], default="any")
    p.add_argument("--no-identity", action="store_true")
    p.add_argument("--heartbeat", type=int, default=1)
    args = p.parse_args()

    if args.creds:
        nc = await nats.connect(servers=args.server, user_credentials=args.creds)
        signer = signer_from_creds_file(args.creds)
    elif args.seed_file:
        nc = await nats.connect(servers=args.server, nkeys_seed=args.seed_file)
        with open(args.seed_file, "rb") as f:
            signer = signer_from_seed(f.read())
    else:
        sys.exit("identity_host.py needs --seed-file or --creds (or NAP_SEED_FILE / NAP_CREDS)")

    service = AgentService(
        agent=args.agent,
        owner=args.owner,
        session_name=args.name,
        nc=nc,
        description="Python SDK sender-identity agent (interop tests)",
        heartbeat_interval_s=args.heartbeat,
        identity=None if args.no_identity else ServiceIdentity(signer=signer),
        min_sender_trust=args.min_trust,
    )

    async def answer(envelope, stream) -> None:
        await stream.send(describe(stream.sender))

    service.on_prompt(answer)
    await service.start()
    print(f"ready {service.instance_id} {service.subject.prompt}", flush=True)
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
