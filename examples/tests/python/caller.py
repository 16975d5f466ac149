"""Python SDK caller (synadia-ai-agents) against a Rust nap host.

Discovers the agent, prompts it with text, with an attachment and with a
question it must answer, reads its status, and prints one JSON line with
what it saw. Usage: caller.py NATS_URL OWNER NAME
"""

import asyncio
import json
import sys

import nats
from synadia_ai.agents import (
    Agents,
    Attachment,
    DiscoverFilter,
    HeartbeatPayload,
    Query,
    ResponseChunk,
)


async def collect(agent, prompt, attachments=None, answer=None):
    text, queries = "", []
    async for msg in agent.prompt(prompt, attachments=attachments, timeout=10):
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
            "protocol_version": agent.protocol_version,
            "text": await collect(agent, "hello from python"),
            "attachment": await collect(
                agent, "see attached", attachments=[Attachment.from_bytes("data.bin", b"\x00\x01\x02")]
            ),
            "query": await collect(agent, "ask: favourite colour?", answer="blue"),
        }
        status_ep = next(e for e in agent.endpoints if e.name == "status")
        reply = await nc.request(status_ep.subject, b"", timeout=5)
        status = HeartbeatPayload.model_validate_json(reply.data)
        out["status_instance_id"] = status.instance_id
        out["status_agent"] = status.agent
        print(json.dumps(out), flush=True)
    finally:
        await agents.close()
        await nc.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
