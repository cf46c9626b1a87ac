"""stack_check: the smallest Prefect round trip, proving a flow run reaches the server.

Run as ``python -m flows.stack_check TOKEN`` with PREFECT_API_URL set; prints the flow
run id and the result as one JSON line.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sys

from prefect import flow, task


@task(retries=2, retry_delay_seconds=[1, 2])
async def digest(token: str) -> str:
    """Hash the token inside a task run."""
    return hashlib.sha256(token.encode()).hexdigest()


@flow(name="stack-check", log_prints=False)
async def stack_check(token: str) -> str:
    """Run one task and return its result."""
    return await digest(token)


async def run_and_report(token: str) -> dict[str, str]:
    """Run the flow and return its run id and result."""
    state = await stack_check(token, return_state=True)
    result = await state.aresult()
    return {"flow_run_id": str(state.state_details.flow_run_id), "token_sha256": str(result)}


def main() -> None:
    """Run the flow once and print its run id and result as JSON."""
    print(json.dumps(asyncio.run(run_and_report(sys.argv[1]))))


if __name__ == "__main__":
    main()
