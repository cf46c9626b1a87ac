"""start_eagerly: a coroutine's first step runs in the caller's turn, the rest as a task."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from engine.live.eager import start_eagerly


async def _two_steps(log: list[str], gate: asyncio.Event) -> int:
    log.append("first step")
    await gate.wait()
    log.append("second step")
    return 7


async def test_the_first_step_runs_before_start_eagerly_returns() -> None:
    log: list[str] = []
    gate = asyncio.Event()
    task = start_eagerly(_two_steps(log, gate), name="two-steps")
    assert log == ["first step"]
    assert isinstance(task, asyncio.Task)
    assert task.get_name() == "two-steps"
    assert "_two_steps" in repr(task)  # the task names the coroutine, not the wrapper
    gate.set()
    assert await task == 7
    assert log == ["first step", "second step"]


async def test_a_coroutine_that_never_suspends_gives_a_done_future() -> None:
    async def at_once() -> str:
        return "done"

    future = start_eagerly(at_once())
    assert future.done()
    assert await future == "done"


async def test_an_error_before_the_first_suspension_lands_on_the_future() -> None:
    async def fails() -> None:
        raise ValueError("bad quote")

    future = start_eagerly(fails())
    with pytest.raises(ValueError, match="bad quote"):
        await future


async def test_a_cancel_before_the_task_first_runs_reaches_the_coroutine() -> None:
    seen: list[str] = []
    gate = asyncio.Event()

    async def waits() -> None:
        try:
            await gate.wait()
        except asyncio.CancelledError:
            seen.append("cancelled where it waited")
            raise

    task = start_eagerly(waits())
    task.cancel()  # the task has not run a step of its own yet
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled where it waited"]
    assert not gate._waiters  # the Event's waiter was cleaned up as after any cancel


async def test_the_first_step_runs_in_the_task_context() -> None:
    where = contextvars.ContextVar("where", default="caller")

    async def sets() -> None:
        where.set("task")
        await asyncio.sleep(0)

    await start_eagerly(sets())
    assert where.get() == "caller"  # like create_task: the task's changes stay its own
