"""A caller on the Python SDK (synadia_ai.agents), following the
conformance suite's caller contract:

    python caller.py --server URL --subject S --timeout SECS --answer A PROMPT

Discovers the agent whose prompt subject is S, prompts it, prints the
response text to stdout, answers every query with A, exits 0 on success and
non-zero with the error on stderr otherwise.

With NATS_NKEY naming a seed file (the NATS tools' convention, and what the
suite's identity cases set), it connects as that NKEY user and signs every
request (the SDK's sender-identity extension, §13).
"""

import argparse
import asyncio
import os
import sys

import nats
from synadia_ai.agents import Agents, Identity, Query, ResponseChunk
from synadia_ai.agents.identity.signer import signer_from_seed


async def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--server", required=True)
    p.add_argument("--subject", required=True)
    p.add_argument("--timeout", type=float, default=60.0)
    p.add_argument("--answer", default="yes")
    p.add_argument("prompt")
    args = p.parse_args()

    seed_file = os.environ.get("NATS_NKEY")
    if seed_file:
        nc = await nats.connect(servers=args.server, nkeys_seed=seed_file)
        with open(seed_file) as f:
            identity = Identity(signer=signer_from_seed(f.read().strip()))
    else:
        nc = await nats.connect(servers=args.server)
        identity = None
    agents = Agents(nc=nc, stream_inactivity_timeout=args.timeout, identity=identity)
    try:
        found = await agents.discover()
        match = [a for a in found if a.prompt_subject == args.subject]
        if not match:
            print(f"no agent advertises {args.subject}", file=sys.stderr)
            return 2
        async for msg in match[0].prompt(args.prompt):
            if isinstance(msg, ResponseChunk):
                sys.stdout.write(msg.text)
                sys.stdout.flush()
            elif isinstance(msg, Query):
                await msg.reply(args.answer)
        print(flush=True)
        return 0
    except Exception as exc:  # noqa: BLE001 - the contract: report and fail
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        await agents.close()
        await nc.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
