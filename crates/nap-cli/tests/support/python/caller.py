"""The Python SDK caller (synadia-ai-agents) against `nap serve echo`.

Usage: caller.py NATS_URL OWNER NAME

Discovers echo/OWNER/NAME, prompts it with text, with an attachment and
with a question it answers `blue`, asks its status endpoint, and prints one
JSON line with what it saw.
"""

import asyncio
import json
import sys

import nats
from synadia_ai.agents import Agents, Attachment, DiscoverFilter, HeartbeatPayload, Query, ResponseChunk


async def collect(agent, prompt, attachments=None, answer=None):
    text, queries = "", []
    async for msg in agent.prompt(prompt, attachments=attachments, timeout=30):
        if isinstance(msg, ResponseChunk):
            text += msg.text
        elif isinstance(msg, Query):
            queries.append(msg.prompt)
            await msg.reply(answer)
    return {"text": text, "queries": queries}


async def main(url, owner, name):
    nc = await nats.connect(servers=url)
    agents = Agents(nc=nc)
    try:
        found = await agents.discover(filter=DiscoverFilter(agent="echo", owner=owner))
        found = [a for a in found if a.session_name == name]
        assert len(found) == 1, f"expected one agent, found {len(found)}"
        agent = found[0]
        out = {
            "instance_id": agent.instance_id,
            "prompt_subject": agent.prompt_subject,
            "text": await collect(agent, "hello from python"),
            "attachment": await collect(
                agent, "see attached", attachments=[Attachment.from_bytes("data.bin", b"\x00\x01\x02")]
            ),
            "query": await collect(agent, "ask: favourite colour?", answer="blue"),
        }
        status_ep = next(e for e in agent.endpoints if e.name == "status")
        reply = await nc.request(status_ep.subject, b"", timeout=5)
        out["status_instance_id"] = HeartbeatPayload.model_validate_json(reply.data).instance_id
        print(json.dumps(out), flush=True)
    finally:
        await agents.close()
        await nc.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
