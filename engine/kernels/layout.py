"""Column layout of the engine's state arrays, shared by every kernel.

State lives in a few caller-owned arrays indexed ``[symbol, COLUMN]`` so a kernel call passes
a handful of arrays instead of dozens. The constants are module globals, which numba folds
into the compiled code.
"""

from __future__ import annotations

from typing import Final

# --- book: int64[symbols, BOOK_ROWS, depth] ---------------------------------------------------
BID_PX: Final = 0
BID_QTY: Final = 1
ASK_PX: Final = 2
ASK_QTY: Final = 3
BOOK_ROWS: Final = 4

# --- per-symbol int64 state: int64[symbols, SI_COLUMNS] ---------------------------------------
SI_LAST_SEQ: Final = 0
SI_LAST_TS: Final = 1
SI_VALID: Final = 2  # 1 once a snapshot completed and no integrity error since
SI_IN_SNAPSHOT: Final = 3
SI_N_BID: Final = 4
SI_N_ASK: Final = 5
# our resting quotes, [bid, ask] pairs
SI_Q_PX: Final = 6  # 6 bid, 7 ask; 0 = no quote
SI_Q_QTY: Final = 8  # 8 bid, 9 ask; remaining lots
SI_Q_AHEAD: Final = 10  # 10 bid, 11 ask; lots queued before us at our price
SI_Q_LIVE_NS: Final = 12  # 12 bid, 13 ask; the quote rests from this time (order latency)
SI_RETRY_NS: Final = 14  # 14 bid, 15 ask; after a denial, do not retry before
SI_STOP_UNTIL_NS: Final = 16  # stop-loss cooldown: no new risk before
SI_MOVE_TS: Final = 17  # last reference (mid) move
SI_MOVE_DIR: Final = 18
SI_LATENCY_ARB_FILLS: Final = 19
SI_LAST_TAKER_NS: Final = 20
SI_STOPS: Final = 21
SI_PRED_FRESH: Final = 22  # 1 while SF_PREDICTION is the model's output for the current features
SI_COLUMNS: Final = 23

# --- per-symbol float64 state: float64[symbols, SF_COLUMNS] -----------------------------------
SF_MID: Final = 0  # ticks; 0 until the book is valid
SF_EWMA_RET: Final = 1
SF_EWMA_VAR: Final = 2
SF_FLOW_SIGNED: Final = 3
SF_FLOW_TOTAL: Final = 4
SF_ADVERSE: Final = 5  # adverse-selection score, ticks
SF_PREDICTION: Final = 6  # last model output, ticks
SF_EQUITY: Final = 7  # cash + qty * mid * multiplier, as of the symbol's last processed event
SF_COLUMNS: Final = 8

# --- features: float64[symbols, N_FEATURES] ---------------------------------------------------
FEAT_MICRO_OFFSET: Final = 0  # microprice - mid, ticks
FEAT_IMBALANCE_L1: Final = 1
FEAT_IMBALANCE_LN: Final = 2
FEAT_SPREAD: Final = 3  # ticks
FEAT_EWMA_RET: Final = 4  # ticks per mid change
FEAT_EWMA_VOL: Final = 5  # ticks
FEAT_FLOW_IMBALANCE: Final = 6
N_FEATURES: Final = 7
FEATURE_NAMES: Final = (
    "micro_offset",
    "imbalance_l1",
    "imbalance_ln",
    "spread",
    "ewma_return",
    "ewma_volatility",
    "flow_imbalance",
)

# --- engine-wide int64 state: int64[G_COLUMNS] ------------------------------------------------
G_TRADING_STATE: Final = 0
G_EVENTS: Final = 1
G_ORDERS: Final = 2  # accepted intents
G_FILLS: Final = 3  # fills, including those not logged because the buffer was full
G_INTENTS: Final = 4  # intents, including those not logged
G_MK_HEAD: Final = 5  # markout ring: oldest pending
G_MK_COUNT: Final = 6
G_MK_DROPPED: Final = 7
G_BOOK_ERRORS: Final = 8
G_STALE: Final = 9
G_CANCELS: Final = 10
G_STOPS: Final = 11
G_LATENCY_ARB: Final = 12
G_MARKOUTS: Final = 13
G_TAKER_ORDERS: Final = 14
G_DENY_BASE: Final = 16  # g[G_DENY_BASE + reason] counts intents by risk verdict
G_BOOK_CODE_BASE: Final = 32  # g[G_BOOK_CODE_BASE + code] counts book integrity codes
G_COLUMNS: Final = 48

# --- engine-wide float64 state: float64[GF_COLUMNS] -------------------------------------------
GF_TOKENS: Final = 0
GF_TOKENS_TS: Final = 1
GF_EQUITY_PEAK: Final = 2
GF_MAX_DRAWDOWN: Final = 3
GF_EQUITY: Final = 4
GF_COLUMNS: Final = 5

# --- markout ring: int64[capacity, MK_COLUMNS] ------------------------------------------------
MK_TS: Final = 0
MK_SYMBOL: Final = 1
MK_SIDE: Final = 2
MK_PRICE: Final = 3
MK_COLUMNS: Final = 4

# --- parameters: float64[P_COLUMNS], built from the frozen configs ----------------------------
# strategy (engine.strategy.MarketMakerConfig)
P_QUOTE_QTY: Final = 0
P_MIN_HALF_SPREAD: Final = 1
P_BASE_HALF_SPREAD: Final = 2
P_VOL_MULT: Final = 3
P_ADVERSE_MULT: Final = 4
P_ADVERSE_PULL: Final = 5
P_INVENTORY_SKEW: Final = 6
P_PREDICTION_WEIGHT: Final = 7
P_REQUOTE_TICKS: Final = 8
P_RETRY_NS: Final = 9
P_TAKER_ENABLED: Final = 10
P_TAKER_QTY: Final = 11
P_TAKER_COOLDOWN_NS: Final = 12
P_MAKER_FILL_PROB: Final = 13
P_MIN_TAKER_EDGE: Final = 14
P_IMBALANCE_LEVELS: Final = 15
P_EWMA_ALPHA: Final = 16
P_FLOW_ALPHA: Final = 17
# venue and fill model (engine.replay.config.FillModelConfig)
P_MAKER_FEE_BPS: Final = 20
P_TAKER_FEE_BPS: Final = 21
P_LATENCY_NS: Final = 22
P_STALE_NS: Final = 23
# post-trade (engine.replay.config.PostTradeConfig)
P_MARKOUT_NS: Final = 30
P_ADVERSE_ALPHA: Final = 31
P_ADVERSE_DECAY: Final = 32
P_LATENCY_ARB_WINDOW_NS: Final = 33
P_LATENCY_ARB_MOVE_TICKS: Final = 34
P_LATENCY_ARB_PENALTY: Final = 35
P_STOP_TICKS: Final = 36
P_STOP_COOLDOWN_NS: Final = 37
P_STOP_SLIPPAGE_TICKS: Final = 38
P_REDUCE_DRAWDOWN: Final = 39
P_HALT_DRAWDOWN: Final = 40
# engine-wide risk (engine.replay.config.RiskConfig)
P_MAX_EXPOSURE: Final = 50  # sqrt(e' C e), quote currency
P_ORDERS_PER_S: Final = 51
P_ORDER_BURST: Final = 52
# mode: 1.0 = live (fills come from the venue, never simulated); 0.0 = replay with fill model
P_LIVE: Final = 53
P_COLUMNS: Final = 56

# --- model vector: float64[MV_ROWS, width] (width = max(features, hidden)) --------------------
MV_MEAN: Final = 0
MV_SCALE: Final = 1
MV_B1: Final = 2
MV_W2: Final = 3
MV_B2: Final = 4  # [MV_B2, 0]
MV_ROWS: Final = 5

# --- packed state: every array of the engine in one byte arena -----------------------------
# The single-event entry point (engine.kernels.replay_nb.replay_packed) takes this arena
# instead of a dozen arrays: every array argument costs time to cross from Python. The
# arena holds, in order, the int64 words (this header first), the float64 words, then the
# positions, fills and intents records; engine.kernels.replay_nb.arena_offsets says where.
PK_SYMBOLS: Final = 0
PK_DEPTH: Final = 1
PK_RING: Final = 2  # markout ring capacity
PK_HIDDEN: Final = 3  # rows of w1
PK_WIDTH: Final = 4  # columns of the model vector
PK_MODEL_KIND: Final = 5
PK_FILL_CAPACITY: Final = 6
PK_INTENT_CAPACITY: Final = 7
PK_HEADER: Final = 8
