"""An MCP host nap did not write: the official Python `mcp` SDK's stdio
client, driving `nap mcp` through the agent tools.

    python mcp_client.py NAP_BINARY NATS_URL ECHO_OWNER ECHO_NAME SLOW_OWNER SLOW_NAME

Prints one JSON object per step on stdout: {"step": NAME, "result": ...},
where result is the tool's JSON result (or the tool list). The Rust test
(`tests/mcp.rs`) judges them.
"""

import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def emit(step, result):
    print(json.dumps({"step": step, "result": result}), flush=True)


async def call(session, name, args):
    res = await session.call_tool(name, args)
    text = "".join(getattr(c, "text", "") for c in res.content)
    return json.loads(text)


def address_of(agents, owner, name):
    for agent in agents:
        if agent.get("owner") == owner and agent.get("name") == name:
            return agent["address"]
    raise SystemExit(f"no agent {owner}/{name} in {agents}")


async def main():
    nap, url, echo_owner, echo_name, slow_owner, slow_name = sys.argv[1:7]
    params = StdioServerParameters(command=nap, args=["--server", url, "mcp"])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            tools = await session.list_tools()
            emit("list_tools", sorted(t.name for t in tools.tools))

            found = await call(session, "discover_agents", {})
            emit("discover_agents", found)
            echo = address_of(found["agents"], echo_owner, echo_name)
            slow = address_of(found["agents"], slow_owner, slow_name)

            emit("prompt_blocking", await call(session, "prompt_agent", {"address": echo, "prompt": "hello over MCP"}))

            started = await call(session, "prompt_agent", {"address": echo, "prompt": "detached hello", "wait": False})
            emit("prompt_detached", started)
            emit("wait_detached", await call(session, "wait_agent", {"call_ids": [started["call_id"]], "timeout_ms": 10000}))

            asked = await call(session, "prompt_agent", {"address": echo, "prompt": "ask: favourite colour?", "wait": False})
            emit("prompt_question", asked)
            question = await call(session, "wait_agent", {"call_ids": [asked["call_id"]], "timeout_ms": 10000})
            emit("wait_question", question)
            emit("answer", await call(session, "answer_agent", {"call_id": asked["call_id"], "answer": "blue", "wait": True}))

            slow_call = await call(session, "prompt_agent", {"address": slow, "prompt": "take your time", "wait": False})
            emit("prompt_slow", slow_call)
            emit("cancel", await call(session, "cancel_agent", {"call_ids": [slow_call["call_id"]]}))
            emit("list", await call(session, "list_agent_calls", {}))


asyncio.run(main())
