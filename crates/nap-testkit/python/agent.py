"""A Python SDK agent (synadia-ai-agent-service): nap's interop peer in tests.

Usage: agent.py NATS_URL OWNER NAME

Registers agent `pyagent` as OWNER/NAME, beats every second, and prints
`READY <instance_id>` once it is registered. What it answers depends on the
prompt:

- `stream`: three response chunks, `one `, `two `, `three`;
- `files`: an object-form response carrying one attachment;
- `reject`: a RequestRejectedError(409) from the handler;
- `crash`: an unexpected exception (the SDK answers 500);
- `ask`: a mid-stream query, then `hello <answer>`;
- anything else: `echo: <prompt>`.

It stops when its stdin closes (the test process is gone) or on SIGTERM.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading

import nats
from synadia_ai.agents import Attachment, Envelope, ResponseChunk

from synadia_ai.agent_service import AgentService, PromptStream, RequestRejectedError


async def handler(envelope: Envelope, stream: PromptStream) -> None:
    prompt = envelope.prompt
    if prompt == "stream":
        for part in ("one ", "two ", "three"):
            await stream.send(part)
    elif prompt == "files":
        await stream.send(
            ResponseChunk(
                text="a file",
                attachments=[Attachment.from_bytes("hello.txt", b"hello from python")],
            )
        )
    elif prompt == "reject":
        raise RequestRejectedError(409, "conflict from python")
    elif prompt == "crash":
        raise RuntimeError("boom")
    elif prompt == "ask":
        answer = await stream.ask("what is your name?", timeout=30)
        await stream.send(f"hello {answer.prompt}")
    else:
        await stream.send(f"echo: {prompt}")


async def main() -> None:
    url, owner, name = sys.argv[1], sys.argv[2], sys.argv[3]
    nc = await nats.connect(servers=url)
    service = AgentService(
        agent="pyagent",
        owner=owner,
        session_name=name,
        nc=nc,
        description="nap interop agent",
        heartbeat_interval_s=1,
    )
    service.on_prompt(handler)
    await service.start()
    await nc.flush()
    print(f"READY {service.instance_id}", flush=True)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    def watch_stdin() -> None:
        # Stdin closing means the test process is gone.
        sys.stdin.read()
        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    try:
        await stop.wait()
    finally:
        await service.stop()
        await nc.close()


if __name__ == "__main__":
    asyncio.run(main())
