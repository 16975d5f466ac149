"""Python SDK caller: discover one agent and print its streamed reply as JSON.

Usage: prompt.py NATS_URL AGENT OWNER PROMPT
Prints {"chunks": N, "text": "..."}; answers queries with "yes".
"""

import asyncio
import json
import sys

import nats
from synadia_ai.agents import Agents, DiscoverFilter, Query, ResponseChunk


async def main(url, agent_id, owner, prompt):
    nc = await nats.connect(servers=url)
    agents = Agents(nc=nc)
    try:
        found = await agents.discover(filter=DiscoverFilter(agent=agent_id, owner=owner))
        assert len(found) == 1, f"expected one agent, found {len(found)}"
        chunks, text = 0, ""
        async for msg in found[0].prompt(prompt, timeout=30):
            if isinstance(msg, ResponseChunk):
                chunks += 1
                text += msg.text
            elif isinstance(msg, Query):
                await msg.reply("yes")
        print(json.dumps({"chunks": chunks, "text": text}), flush=True)
    finally:
        await agents.close()
        await nc.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
