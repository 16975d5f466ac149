"""A caller on the Python SDK (synadia_ai.agents) with the sender-identity
extension (§13), for the identity interop tests.

    python identity_caller.py --server URL (--seed-file F | --creds F)
        --owner O --name N [--agent A] [--identity signed|claim|none]
        [--subject LOCAL --sub SIGNED] [--raw] [--report-target]
        [--timeout SECS] PROMPT

The credentials may also come from env NAP_SEED_FILE / NAP_CREDS.

Discovers the agent with that owner and instance name (and agent, when
given), prompts it and prints the reply text on stdout, or
`error CODE: description` when the agent (or, before sending, the SDK)
refuses. `--identity` picks what the requests carry: `signed` (the
default, `Identity(signer=...)`), `claim` (an unsigned claim, `Identity()`)
or `none` (no identity, no header). `--subject` / `--sub` prompt through
an import renamed by the caller's own account: publish to LOCAL, sign SIGNED
(the exporter's subject, §13.6.2).

`--raw` sends the prompt without the SDK (no `Agent-Sender`, no local
`min_sender_trust` check), so an agent's own refusal can be seen.

`--report-target` first prints what the caller can check about the target:
`target <account>.<user>|none id_sig <verified|unverified>` from its
registration (§13.10), then `heartbeat <verified|claimed|absent> <id>|
heartbeat error ...` from one heartbeat's `Agent-Sender` (§13.11).

Exit code 0 when a reply or an agent error was printed, 2 when no agent
matched, 1 on any other failure (on stderr).
"""

import argparse
import asyncio
import json
import os
import re
import sys

import nats
from synadia_ai.agents import (
    Agents,
    ClaimedSender,
    Identity,
    ProtocolError,
    Query,
    ResponseChunk,
    VerifiedSender,
)
from synadia_ai.agents.errors import (
    SenderSignatureRequiredError,
    SenderVerificationError,
)
from synadia_ai.agents.identity import (
    signer_from_creds_file,
    signer_from_seed,
    verify_sender,
)

_SERVICE_ERROR = re.compile(r"service error (\d+): (.*)$")


async def report_target(nc, agent) -> None:
    ident = agent.identity
    print(
        f"target {ident if ident is not None else 'none'} id_sig "
        f"{'verified' if agent.id_sig_verified else 'unverified'}",
        flush=True,
    )
    hb_subject = agent.prompt_subject.replace(".prompt.", ".hb.", 1)
    sub = await nc.subscribe(hb_subject)
    try:
        msg = await sub.next_msg(timeout=5)
        try:
            sender = verify_sender(msg, "stored")
        except SenderVerificationError as exc:
            print(f"heartbeat error {exc.code}: {exc.detail}", flush=True)
            return
        if isinstance(sender, VerifiedSender):
            print(f"heartbeat verified {sender.id}", flush=True)
        elif isinstance(sender, ClaimedSender):
            print(f"heartbeat claimed {sender.claim.account}.{sender.claim.user}", flush=True)
        else:
            print("heartbeat absent", flush=True)
    finally:
        await sub.unsubscribe()


async def raw_prompt(nc, subject: str, text: str, timeout: float) -> int:
    """The prompt without the SDK: every reply frame until the terminator."""
    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox)
    await nc.publish(subject, json.dumps({"prompt": text}).encode(), reply=inbox)
    out = []
    while True:
        msg = await sub.next_msg(timeout=timeout)
        headers = msg.headers or {}
        if "Nats-Service-Error-Code" in headers:
            code = headers["Nats-Service-Error-Code"]
            print(f"error {code}: {headers.get('Nats-Service-Error', '')}", flush=True)
            return 0
        if not msg.data and not headers:
            break
        try:
            frame = json.loads(msg.data)
        except ValueError:
            continue
        if isinstance(frame, dict) and frame.get("type") == "response":
            data = frame.get("data")
            out.append(data.get("text", "") if isinstance(data, dict) else str(data))
    print("".join(out), flush=True)
    return 0


async def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--server", required=True)
    p.add_argument("--seed-file", default=os.environ.get("NAP_SEED_FILE"))
    p.add_argument("--creds", default=os.environ.get("NAP_CREDS"))
    p.add_argument("--agent")
    p.add_argument("--owner", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--identity", choices=["signed", "claim", "none"], default="signed")
    p.add_argument("--subject")
    p.add_argument("--sub")
    p.add_argument("--raw", action="store_true")
    p.add_argument("--report-target", action="store_true")
    p.add_argument("--timeout", type=float, default=10.0)
    p.add_argument("prompt")
    args = p.parse_args()

    if args.creds:
        nc = await nats.connect(servers=args.server, user_credentials=args.creds)
        signer = signer_from_creds_file(args.creds)
    elif args.seed_file:
        nc = await nats.connect(servers=args.server, nkeys_seed=args.seed_file)
        with open(args.seed_file, "rb") as f:
            signer = signer_from_seed(f.read())
    else:
        print("identity_caller.py needs --seed-file or --creds", file=sys.stderr)
        return 1

    identity = {
        "signed": Identity(signer=signer),
        "claim": Identity(),
        "none": None,
    }[args.identity]
    agents = Agents(nc=nc, identity=identity, stream_inactivity_timeout=args.timeout)
    try:
        found = await agents.discover()
        match = [
            a
            for a in found
            if a.owner == args.owner
            and a.session_name == args.name
            and (args.agent is None or a.agent == args.agent)
        ]
        if not match:
            seen = ", ".join(a.prompt_subject for a in found) or "nothing"
            print(f"no agent {args.owner}/{args.name} (found {seen})", file=sys.stderr)
            return 2
        agent = match[0]
        if args.report_target:
            await report_target(nc, agent)
        if args.raw:
            return await raw_prompt(nc, args.subject or agent.prompt_subject, args.prompt, args.timeout)
        text = []
        try:
            async for msg in agent.prompt(args.prompt, subject=args.subject, sub=args.sub):
                if isinstance(msg, ResponseChunk):
                    text.append(msg.text)
                elif isinstance(msg, Query):
                    await msg.reply("yes")
        except SenderSignatureRequiredError as exc:
            print("refused locally: the endpoint requires a signature", file=sys.stderr)
            print(f"error {exc.code}: {exc.description}", flush=True)
            return 0
        except ProtocolError as exc:
            m = _SERVICE_ERROR.search(str(exc))
            if m is None:
                raise
            print(f"error {m.group(1)}: {m.group(2)}", flush=True)
            return 0
        print("".join(text), flush=True)
        return 0
    except Exception as exc:  # noqa: BLE001 - report and fail
        print(f"failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        await agents.close()
        await nc.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
