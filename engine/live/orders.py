"""The order manager: write-ahead journaling, gated sends, fills into positions.

Every order follows the same path (DESIGN.md §4, "Orders"):

1. a deterministic client order id ``<instance>-<epoch>-<seq>`` is drawn;
2. ORDER_NEW is made durable in the journal **before** anything is sent, so after any
   crash the journal names every client id that may exist at the venue;
3. the trading gate is checked right before the send (a halt stops queued sends);
4. the answer is journaled: ORDER_ACKED, ORDER_REJECTED, or ORDER_UNKNOWN when it never
   came, and then resolved by client id (never by sending again).

Fills come from polling the venue's own trades of the account (``myTrades`` paged by trade
id): each is journaled once (``(venue, symbol, trade_id, side)`` is unique), then applied
to the order, to the in-memory positions and to the ``positions`` table.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final, Protocol

import structlog

from engine.errors import EngineError, OperationalError, TemporaryError
from engine.execution import (
    AccountClient,
    CircuitOpenError,
    Clock,
    Instrument,
    NotPlaced,
    OrderClient,
    OrderNotFoundError,
    OrderRejectedError,
    OrderRequest,
    OrderState,
    SystemClock,
    UnknownOutcomeError,
    ccxt_time,
)
from engine.execution.models import OrderType, Side
from engine.journal import FencedError, FillRecord, GroupCommitter, JournalEvent, JournalKind
from engine.live import metrics
from engine.live.fills import Position, PositionStore, fill_record
from engine.live.gate import HALTED, TradingGate
from engine.live.order_table import (
    IllegalTransitionError,
    LocalOrder,
    OrderPhase,
    OrderTable,
    order_from_body,
    request_body,
)

log = structlog.get_logger(__name__)

INSTANCE_PATTERN: Final = re.compile(r"^[A-Za-z0-9_.]{1,12}$")
"""Instance ids usable in client order ids: no ``-`` (it separates the parts), and short
enough that ``<instance>-<epoch>-<seq>`` stays within Binance's 36 characters."""

LIQUIDATION_PREFIX: Final = "liq-"
"""Client ids of liquidation child orders (``liq-<workflow hash>-<symbol>-<slice>``): given
by the liquidation workflow, sent by whichever engine leads, and the desk's own in
recovery and fill adoption like the ``<instance>-`` ids."""

MAX_SEQ: Final = 10**12 - 1
MAX_EPOCH: Final = 10**10 - 1
SEND_TIME_SAMPLES: Final = 100_000

_KIND_OF_PHASE: Final = {
    OrderPhase.CANCELED: JournalKind.ORDER_CANCELED,
    OrderPhase.FILLED: JournalKind.ORDER_FILLED,
    OrderPhase.REJECTED: JournalKind.ORDER_REJECTED,
}


def _count(order: LocalOrder, outcome: str) -> None:
    """Count one order outcome (``bot4_engine_orders_total``)."""
    metrics.ORDERS.labels(symbol=order.symbol, side=order.request.side, outcome=outcome).inc()


@dataclass(frozen=True, kw_only=True, slots=True)
class OrderManagerConfig:
    """How the manager sends and polls.

    Attributes:
        venue: venue name written with fills (``fills`` key: venue, symbol, trade_id, side).
        max_in_flight: sends outstanding at once; further sends queue (and see a halt).
        poll_interval_s: period of the fill / unknown-outcome / open-order poll.
        settle_timeout_s: how long ``cancel_all`` waits for in-flight sends to settle.
        cancel_rounds: cancel-and-verify rounds of ``cancel_all`` before it gives up.
        ended_retention_s: how long an ended order stays in memory after it was seen
            ended (its late fills and venue answers still find it; liquidation children
            stay for the process's life). Far above the fill poll's lag: a fill precedes
            its order's end, and the poll finds it within a round or two.
    """

    venue: str = "binance"
    max_in_flight: int = 8
    poll_interval_s: float = 0.5
    settle_timeout_s: float = 5.0
    cancel_rounds: int = 3
    ended_retention_s: float = 300.0

    def __post_init__(self) -> None:
        if self.max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1 (got {self.max_in_flight})")
        if self.poll_interval_s <= 0 or self.settle_timeout_s < 0:
            raise ValueError("poll_interval_s must be > 0 and settle_timeout_s >= 0")
        if self.cancel_rounds < 1:
            raise ValueError(f"cancel_rounds must be >= 1 (got {self.cancel_rounds})")
        if self.ended_retention_s < 0:
            raise ValueError(f"ended_retention_s must be >= 0 (got {self.ended_retention_s})")


class FillListener(Protocol):
    """Called with each fill once it is durable in the journal (on the loop's thread)."""

    def __call__(self, record: FillRecord, *, maker: bool) -> None:
        """Take one fill; ``maker`` says whether our order was the resting side."""


class CancelAllIncompleteError(OperationalError):
    """Orders of ours were still open at the venue after every cancel round.

    Attributes:
        remaining: their client order ids.
    """

    def __init__(self, message: str, *, remaining: Sequence[str]) -> None:
        super().__init__(message)
        self.remaining = tuple(remaining)


@dataclass(frozen=True, kw_only=True, slots=True)
class CancelAllReport:
    """What ``cancel_all`` did: every open order of ours it canceled, verified gone."""

    canceled: tuple[str, ...]
    rounds: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ManagerSnapshot:
    """What ``/status`` shows; immutable, so any thread may read it."""

    open_orders: int
    unknown_orders: int
    fills_recorded: int
    positions: Mapping[str, Mapping[str, str]]
    in_memory: int = 0  # orders in the table, ended ones within their retention included
    forgotten: int = 0  # ended orders dropped from memory since the start (journal keeps them)


class OrderManager:
    """Sends, cancels and tracks the orders of one engine under one lease epoch.

    Args:
        client: the adapter's order client.
        account: the adapter's account client (fills).
        committer: the journal's group committer (running).
        gate: the trading gate checked before every send.
        instruments: the traded symbols.
        instance: this engine's instance id (see :data:`INSTANCE_PATTERN`).
        epoch: the lease epoch we hold (also the fence of every write).
        config: tuning.
        clock: time source.
        send_before_durable: asked before each send; True lets the order go out while
            its ORDER_NEW is still being committed (the lease is certainly ours and the
            journal is healthy, so only a crash inside one group commit can leave a venue
            order the journal lacks, and recovery cancels or adopts such orphans by their
            client id prefix). False or None: classic write-ahead, the send waits for the
            commit (and a stale epoch is refused before anything leaves).

    Raises:
        ValueError: ``instance`` or ``epoch`` cannot form a valid client order id.
    """

    def __init__(
        self,
        *,
        client: OrderClient,
        account: AccountClient,
        committer: GroupCommitter,
        gate: TradingGate,
        instruments: Mapping[str, Instrument],
        instance: str,
        epoch: int,
        config: OrderManagerConfig | None = None,
        clock: Clock | None = None,
        send_before_durable: Callable[[], bool] | None = None,
    ) -> None:
        if not INSTANCE_PATTERN.fullmatch(instance):
            raise ValueError(f"instance {instance!r}: 1-12 characters of A-Z a-z 0-9 _ .")
        if not 1 <= epoch <= MAX_EPOCH:
            raise ValueError(f"epoch must be in [1, {MAX_EPOCH}] (got {epoch})")
        self.client, self.account, self.committer, self.gate = client, account, committer, gate
        self.instruments = dict(instruments)
        self.instance, self.epoch = instance, epoch
        self.config = config or OrderManagerConfig()
        self.clock = clock or SystemClock()
        self.send_before_durable = send_before_durable
        self.table = OrderTable()
        self.positions: dict[str, Position] = {}
        self.fill_cursors: dict[str, int] = {}
        self.fills_recorded = 0
        self.forgotten = 0  # ended orders dropped from memory (see ended_retention_s)
        self.sent_at: dict[str, float] = {}
        # (monotonic ns, ccxt_time.spent_ns()) when the adapter began each order's request
        # (the end of tick-to-order; taken by the reader)
        self.request_started: dict[str, tuple[int, int]] = {}
        self._resolving: set[str] = set()  # client ids whose resolution is under way
        # (hand-off, answer) monotonic times of the latest sends, for latency benchmarks
        self.send_times: deque[tuple[float, float]] = deque(maxlen=SEND_TIME_SAMPLES)
        self.on_fill: FillListener | None = None
        self.store = PositionStore(
            pool=committer.journal.pool, lease=committer.journal.lease, epoch=epoch,
            instance=instance,
        )  # fmt: skip
        self._seq = 0
        self._slots = asyncio.Semaphore(self.config.max_in_flight)
        self._sending = 0
        self._settled = asyncio.Event()
        self._settled.set()
        self._poll_lock = asyncio.Lock()
        self._snapshot = ManagerSnapshot(
            open_orders=0, unknown_orders=0, fills_recorded=0, positions={}
        )

    @property
    def prefix(self) -> str:
        """Return the start of every client order id of this instance (any epoch)."""
        return f"{self.instance}-"

    def restore(
        self,
        orders: Iterable[LocalOrder],
        fills: Sequence[FillRecord],
        *,
        fill_cursors: Mapping[str, int],
    ) -> None:
        """Load what recovery rebuilt from the journal (before trading starts)."""
        for order in orders:
            self.table.add(order)
        for f in fills:
            self.positions[f.symbol] = self.positions.get(f.symbol, Position(symbol=f.symbol)).plus(
                f
            )
        self.fill_cursors.update(fill_cursors)
        self._publish()

    def next_client_order_id(self) -> str:
        """Draw the next client order id of this epoch."""
        if self._seq >= MAX_SEQ:
            raise OperationalError(f"epoch {self.epoch} used all {MAX_SEQ} client order ids")
        self._seq += 1
        return f"{self.instance}-{self.epoch}-{self._seq}"

    async def submit(
        self,
        *,
        symbol: str,
        side: Side,
        type: OrderType,
        amount: Decimal,
        price: Decimal | None = None,
        time_in_force: str | None = None,
        reduce_only: bool = False,
        client_order_id: str | None = None,
        write_ahead: bool = False,
        context: Mapping[str, object] | None = None,
    ) -> LocalOrder:
        """Journal, gate-check and send one order; return it in its resulting phase.

        ``client_order_id`` overrides the drawn id (liquidation children: the caller owns
        the id and its uniqueness); ``write_ahead`` makes the send wait for ORDER_NEW to be
        durable whatever ``send_before_durable`` says. ``context`` is journaled with
        ORDER_NEW as is (the decision's arrival mid, for execution-quality reports).

        The returned order is REJECTED (``reason`` says why) when the venue refused it,
        the gate closed before the send, or the venue confirmed it never placed it; it is
        UNKNOWN when its answer was lost and could not be resolved yet (the poll loop
        keeps resolving it).

        Raises:
            ValueError: bad input (unknown symbol, off-grid price or amount) named in the
                message; nothing was journaled.
            FencedError: our epoch is stale; nothing was sent.
        """
        instrument = self.instruments.get(symbol)
        if instrument is None:
            raise ValueError(f"symbol {symbol!r} is not a configured instrument")
        instrument.qty_to_lots(amount)
        if price is not None:
            instrument.price_to_ticks(price)
        if time_in_force not in (None, "GTC", "IOC", "FOK"):
            raise ValueError(f"time_in_force must be GTC, IOC or FOK (got {time_in_force!r})")
        request = OrderRequest(
            client_order_id=client_order_id or self.next_client_order_id(), symbol=symbol,
            side=side, type=type,
            amount=amount, price=price, time_in_force=time_in_force,  # type: ignore[arg-type]
        )  # fmt: skip
        order = self.table.add(LocalOrder(request=request, reduce_only=reduce_only))
        self._sending += 1
        self._settled.clear()
        try:
            body = request_body(request, reduce_only=reduce_only) | {"epoch": self.epoch}
            if context:
                body |= {"context": dict(context)}
            durable = await self._enqueue(JournalKind.ORDER_NEW, order, body)
            durable.add_done_callback(_retrieve)  # a send that fails must not orphan it
            if write_ahead or self.send_before_durable is None or not self.send_before_durable():
                await durable  # write-ahead: the intent is durable before the send
            await self._send(order)
            await durable  # FencedError here: sent under a stale epoch; caller steps down
        finally:
            self._sending -= 1
            if not self._sending:
                self._settled.set()
            self._publish()
        return order

    async def _send(self, order: LocalOrder) -> None:
        async with self._slots:
            # checked here, after waiting for a slot, so a halt also stops queued sends
            if order.reduce_only:
                allowed = self.gate.allows_reducing_orders()
            else:
                allowed = self.gate.allows_new_orders()
            if not allowed:
                order.to(OrderPhase.REJECTED, reason=f"trading state {self.gate.name}")
                await self._record(JournalKind.ORDER_REJECTED, order, {"sent": False})
                return
            order.to(OrderPhase.IN_FLIGHT)
            try:
                state = await self._hand_off(order)
            except OrderRejectedError as e:
                _count(order, "rejected")
                order.to(OrderPhase.REJECTED, reason=str(e))
                await self._record(JournalKind.ORDER_REJECTED, order, {"sent": True})
                return
            except CircuitOpenError as e:  # refused locally: the request never left
                _count(order, "not_sent")
                order.to(OrderPhase.REJECTED, reason=str(e))
                await self._record(JournalKind.ORDER_REJECTED, order, {"sent": False})
                return
            except EngineError as e:
                # a lost answer, or any failure after which the order may exist
                _count(order, "unknown_outcome")
                order.to(OrderPhase.UNKNOWN, reason=str(e))
                await self._record(JournalKind.ORDER_UNKNOWN, order, {"error": str(e)})
            except BaseException:
                order.to(OrderPhase.UNKNOWN)  # the journal's ORDER_NEW lets recovery resolve it
                raise
            else:
                _count(order, "acknowledged")
                await self.apply_venue_state(order, state)
                return
        await self.resolve(order)

    async def _hand_off(self, order: LocalOrder) -> OrderState:
        """Hand the request to the venue client, stamping the hand-off and the answer."""
        sent_at = self.sent_at[order.client_order_id] = self.clock.monotonic()
        ccxt_time.begin_request()
        try:
            return await self.client.create_order(order.request)
        finally:
            started = ccxt_time.request_started()
            if started is not None:
                self.request_started[order.client_order_id] = started
            answered_at = self.clock.monotonic()
            self.send_times.append((sent_at, answered_at))
            metrics.ORDER_ROUND_TRIP.labels(action="create").observe(answered_at - sent_at)

    async def resolve(self, order: LocalOrder) -> None:
        """Ask the venue about an UNKNOWN order by client id and journal the answer.

        One resolution per order at a time: the send that lost its answer and the poll
        loop both resolve UNKNOWN orders, and two answers would journal the outcome twice.
        """
        cid = order.client_order_id
        if cid in self._resolving:
            return
        self._resolving.add(cid)
        try:
            await self._resolve(order)
        finally:
            self._resolving.discard(cid)

    async def _resolve(self, order: LocalOrder) -> None:
        sent_at = self.sent_at.get(order.client_order_id, self.clock.monotonic())
        try:
            result = await self.client.resolve(order.client_order_id, order.symbol, sent_at=sent_at)
        except (UnknownOutcomeError, TemporaryError) as e:
            metrics.RETRIES.labels(operation="order_resolution").inc()  # the poll asks again
            log.warning("order_still_unknown", client_order_id=order.client_order_id, error=str(e))
            return
        if order.phase is not OrderPhase.UNKNOWN:
            return  # learnt meanwhile (a fill, the open-order refresh): nothing to add
        if isinstance(result, NotPlaced):
            order.to(OrderPhase.REJECTED, reason="not placed")
            await self._record(JournalKind.ORDER_REJECTED, order, {"sent": True})
        else:
            await self.apply_venue_state(order, result)

    async def apply_venue_state(self, order: LocalOrder, state: OrderState) -> None:
        """Adopt the venue's view of ``order`` and journal it."""
        order.apply_venue(state)
        self.table.index(order)
        kind = _KIND_OF_PHASE.get(order.phase, JournalKind.ORDER_ACKED)
        body = {
            "order_id": state.order_id,
            "status": state.status.value,
            "filled": str(state.filled),
        }
        await self._record(kind, order, body)

    async def cancel(self, client_order_id: str) -> LocalOrder:
        """Cancel one order (always allowed, whatever the trading state).

        Raises:
            ValueError: no such order.
            OrderNotFoundError: the venue does not know the order at all.
        """
        order = self.table.get(client_order_id)
        if order is None:
            raise ValueError(f"client_order_id {client_order_id!r} is not an order of ours")
        started = self.clock.monotonic()
        try:
            state = await self.client.cancel_order(client_order_id, order.symbol)
            metrics.ORDER_ROUND_TRIP.labels(action="cancel").observe(
                self.clock.monotonic() - started)  # fmt: skip
            _count(order, "cancelled")
        except OrderNotFoundError:  # no longer open: learn how it ended instead
            state = await self.client.fetch_order(client_order_id, order.symbol)
        await self.apply_venue_state(order, state)
        self._publish()
        return order

    async def cancel_all(self) -> CancelAllReport:
        """Cancel every open order of ours on every symbol and verify none remains.

        In-flight sends are let to settle first (up to ``settle_timeout_s``): an order
        whose answer is still on its way would otherwise appear after the check.

        Raises:
            CancelAllIncompleteError: orders of ours were still open after every round.
        """
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._settled.wait(), self.config.settle_timeout_s)
        canceled: list[str] = []
        for round_ in range(self.config.cancel_rounds + 1):
            ours = [
                o
                for listed in await self._open_orders_everywhere()
                for o in listed
                if o.client_order_id.startswith(self.prefix)
            ]
            if not ours:
                self._publish()
                return CancelAllReport(canceled=tuple(canceled), rounds=round_)
            if round_ == self.config.cancel_rounds:
                break
            results = await asyncio.gather(
                *(self.client.cancel_order(o.client_order_id, o.symbol) for o in ours),
                return_exceptions=True,
            )
            for venue_order, result in zip(ours, results, strict=True):
                if isinstance(result, OrderNotFoundError):
                    continue  # filled or canceled meanwhile; the next round checks again
                if isinstance(result, BaseException):
                    log.warning("cancel_failed", client_order_id=venue_order.client_order_id,
                                error=str(result))  # fmt: skip
                    continue
                canceled.append(venue_order.client_order_id)
                await self.record_cancel(venue_order, result)
        remaining = [o.client_order_id for o in ours]
        self._publish()
        raise CancelAllIncompleteError(
            f"{len(remaining)} orders still open after {self.config.cancel_rounds} cancel rounds",
            remaining=remaining,
        )

    async def record_cancel(self, venue_order: OrderState, result: OrderState) -> None:
        """Journal a cancel the venue confirmed (of a table order or of an orphan)."""
        order = self.table.get(venue_order.client_order_id)
        try:
            if order is None:  # not in our table: an orphan (see recovery)
                event = JournalEvent(
                    kind=JournalKind.ORDER_CANCELED, client_order_id=venue_order.client_order_id,
                    body={"order_id": result.order_id, "status": result.status.value,
                          "filled": str(result.filled), "orphan": True},
                )  # fmt: skip
                await self.committer.record([event])
            else:
                await self.apply_venue_state(order, result)
        except FencedError:
            # a deposed engine still cancels what it can (DESIGN.md §4, "Leadership")
            log.warning("cancel_not_journaled", client_order_id=venue_order.client_order_id)

    async def poll_fills(self, symbols: Sequence[str] | None = None) -> int:
        """Journal the venue's new fills of our account, then apply them; return how many.

        ``symbols`` limits the poll (default: every instrument). Serialized: a caller that
        needs its fills now (a liquidation child) may poll beside the background loop, and
        two polls from one cursor would apply a fill twice.
        """
        async with self._poll_lock:
            return await self._poll_fills(list(self.instruments) if symbols is None else symbols)

    async def _poll_fills(self, symbols: Sequence[str]) -> int:
        added = 0
        # one round trip for every symbol (a handoff waits on this), then in symbol order
        fetched = await asyncio.gather(*(
            self.account.fetch_fills(symbol, after_trade_id=self.fill_cursors.get(symbol, 0))
            for symbol in symbols
        ))  # fmt: skip
        for symbol, fills in zip(symbols, fetched, strict=True):
            records: list[FillRecord] = []
            for f in fills:
                order = self.table.by_venue_id(f.order_id)
                if order is None and self.table.pending(symbol):
                    break  # maybe an order whose answer is still on the way: next poll
                if order is None:
                    order = await self._adopt_unknown(f.order_id, symbol)
                cid = "" if order is None else order.client_order_id
                records.append(fill_record(f, venue=self.config.venue, client_order_id=cid))
            if records:
                await self.record_fills(records)
                self.fill_cursors[symbol] = max(int(r.trade_id) for r in records)
                added += len(records)
        return added

    async def _open_orders_everywhere(self) -> list[list[OrderState]]:
        """Return the venue's open orders of every symbol, asked in parallel.

        A handoff waits on these lists twice (the old leader's cancel-all, the new one's
        recovery): one round trip instead of one per symbol.
        """
        return list(await asyncio.gather(*(self.client.fetch_open_orders(s)
                                            for s in self.instruments)))  # fmt: skip

    async def _adopt_unknown(self, venue_order_id: str, symbol: str) -> LocalOrder | None:
        """Find the order of a fill the table does not know; adopt it if it is ours.

        Ours but unknown happens when the process died after a send and before its
        ORDER_NEW was durable (``send_before_durable``); anything else (a manual trade on
        the account) is foreign, and its fills are journaled without a client id.
        """
        try:
            venue_order = await self.client.fetch_order_by_venue_id(venue_order_id, symbol)
            if not venue_order.client_order_id.startswith((self.prefix, LIQUIDATION_PREFIX)):
                return None
            known = self.table.get(venue_order.client_order_id)
            if known is None:  # forgotten after it ended (a very late fill): the journal has it
                known = await self._from_journal(venue_order.client_order_id)
            if known is not None:  # ours, its venue id not learnt yet: link, don't add
                await self.apply_venue_state(known, venue_order)
                return known
            return await self.adopt(venue_order)
        except (EngineError, ValueError, IllegalTransitionError) as e:
            # the fill itself must never wait on this: journal it without a client id
            log.warning("fill_order_not_adopted", venue_order_id=venue_order_id,
                        symbol=symbol, error=str(e))  # fmt: skip
            return None

    async def _from_journal(self, client_order_id: str) -> LocalOrder | None:
        """Put back an order this engine forgot, from its journaled events and fills.

        See ``ended_retention_s``: the order is then never journaled as new a second time.
        """
        pool = self.committer.journal.pool
        rows = await pool.fetch(
            "SELECT kind, body FROM journal_events WHERE client_order_id = $1"
            " AND kind LIKE 'order%' ORDER BY seq",
            client_order_id,
        )
        if not rows or rows[0]["kind"] != JournalKind.ORDER_NEW.value:
            return None
        order = order_from_body(client_order_id, json.loads(rows[0]["body"]))
        for row in rows[1:]:  # every event this manager journals carries the phase it led to
            body = json.loads(row["body"])
            if body.get("order_id"):
                order.order_id = str(body["order_id"])
            if body.get("phase"):
                order.advance(OrderPhase(body["phase"]), reason=body.get("reason"))
        filled = await pool.fetchval(
            "SELECT coalesce(sum(qty), 0) FROM fills WHERE client_order_id = $1", client_order_id
        )
        order.filled = Decimal(filled)
        self.table.add(order)
        log.info("forgotten_order_restored", client_order_id=client_order_id,
                 phase=order.phase.value)  # fmt: skip
        return order

    async def adopt(self, venue_order: OrderState) -> LocalOrder:
        """Journal a venue order of ours that the journal lacks, in the venue's state."""
        request = OrderRequest(
            client_order_id=venue_order.client_order_id, symbol=venue_order.symbol,
            side=venue_order.side, type="limit" if venue_order.price else "market",
            amount=venue_order.amount, price=venue_order.price,
        )  # fmt: skip
        order = self.table.add(LocalOrder(request=request))
        body = request_body(request, reduce_only=False) | {"adopted": True}
        await self._record(JournalKind.ORDER_NEW, order, body)
        await self.apply_venue_state(order, venue_order)
        log.warning("order_adopted", client_order_id=order.client_order_id,
                    status=venue_order.status.value)  # fmt: skip
        return order

    async def record_fills(self, records: Sequence[FillRecord]) -> None:
        """Journal fills (with ORDER_FILLED for orders they complete), then apply them.

        Applying means: the order's filled quantity, the in-memory position, ``on_fill``
        (fills found by recovery included), then the ``positions`` table.

        Raises:
            FencedError: our epoch is stale; nothing was applied.
        """
        filled: dict[str, Decimal] = {}
        for r in records:
            filled[r.client_order_id] = filled.get(r.client_order_id, Decimal(0)) + r.qty
        events = []
        for cid, qty in filled.items():
            order = self.table.get(cid)
            if order is not None and order.filled + qty == order.request.amount:
                events.append(JournalEvent(kind=JournalKind.ORDER_FILLED, client_order_id=cid,
                                           body={"filled": str(order.filled + qty)}))  # fmt: skip
        await self.committer.record(events, records)
        deltas: dict[str, Position] = {}
        for r in records:
            if self.on_fill is not None:
                self.on_fill(r, maker=r.liquidity == "maker")
            order = self.table.get(r.client_order_id)
            if order is not None:
                try:
                    order.apply_fill(r.qty)
                except IllegalTransitionError as e:
                    # journaled already: the position must still move, exactly once
                    log.error("fill_does_not_fit_its_order", trade_id=r.trade_id,
                              client_order_id=r.client_order_id, error=str(e))  # fmt: skip
            self.positions[r.symbol] = self.positions.get(r.symbol, Position(symbol=r.symbol)).plus(
                r
            )
            deltas[r.symbol] = deltas.get(r.symbol, Position(symbol=r.symbol)).plus(r)
        self.fills_recorded += len(records)
        self._publish()
        for delta in deltas.values():
            await self.store.add(delta)

    async def poll_once(self) -> None:
        """One round of the background work: resolve unknowns, refresh ended orders, fills."""
        for order in self.table.live():
            if order.phase is OrderPhase.UNKNOWN:
                await self.resolve(order)
        await self._refresh_ended()
        await self.poll_fills()
        self._forget_ended()
        self._publish()

    def _forget_ended(self) -> None:
        """Drop ended orders past their retention from memory (the journal keeps them)."""
        evicted = self.table.evict_ended(
            self.clock.monotonic(), older_than_s=self.config.ended_retention_s,
            keep=lambda order: order.client_order_id.startswith(LIQUIDATION_PREFIX),
        )  # fmt: skip
        for client_order_id in evicted:
            self.sent_at.pop(client_order_id, None)
            self.request_started.pop(client_order_id, None)
        self.forgotten += len(evicted)

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop`` is set; temporary failures are logged and polled again.

        Raises:
            FencedError: our epoch is stale (the gate is HALTED first).
        """
        while not stop.is_set():
            try:
                await self.poll_once()
            except FencedError:
                self.gate.lower(HALTED, reason="lease lost", by="order_manager")
                raise
            except TemporaryError as e:
                log.warning("order_poll_failed", error=str(e))
            except (EngineError, ValueError, IllegalTransitionError):
                # a poll that stopped here would stop journaling fills: log, poll again
                log.exception("order_poll_crashed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.poll_interval_s)

    def snapshot(self) -> ManagerSnapshot:
        """Return the last published snapshot (safe from any thread)."""
        return self._snapshot

    async def _refresh_ended(self) -> None:
        """Learn how acked orders that left the venue's open list ended (expiry, fill)."""
        for symbol in self.instruments:
            resting = [
                o for o in self.table.live(symbol)
                if o.phase in (OrderPhase.ACKED, OrderPhase.PARTIALLY_FILLED)
            ]  # fmt: skip
            if not resting:
                continue
            still_open = {o.client_order_id for o in await self.client.fetch_open_orders(symbol)}
            for order in resting:
                if order.client_order_id not in still_open:
                    state = await self.client.fetch_order(order.client_order_id, symbol)
                    await self.apply_venue_state(order, state)

    async def _record(self, kind: JournalKind, order: LocalOrder, body: dict[str, Any]) -> None:
        await (await self._enqueue(kind, order, body))

    async def _enqueue(
        self, kind: JournalKind, order: LocalOrder, body: dict[str, Any]
    ) -> asyncio.Future[None]:
        body = body | {"phase": order.phase.value, "reason": order.reason}
        event = JournalEvent(kind=kind, client_order_id=order.client_order_id, body=body)
        return await self.committer.enqueue([event])

    def _publish(self) -> None:
        live = self.table.live()
        self._snapshot = ManagerSnapshot(
            open_orders=len(live),
            unknown_orders=sum(o.phase is OrderPhase.UNKNOWN for o in live),
            fills_recorded=self.fills_recorded,
            positions={
                s: {"qty": str(p.qty), "cost": str(p.cost)} for s, p in self.positions.items()
            },
            in_memory=len(self.table),
            forgotten=self.forgotten,
        )


def _retrieve(future: asyncio.Future[None]) -> None:
    """Mark a commit future's failure as seen (asyncio warns about unseen ones)."""
    if not future.cancelled():
        future.exception()
