-- A self-trade (our buy order meeting our own sell order) is one venue trade with two
-- sides on our account: Binance's myTrades lists it twice under the same trade id, once
-- as buyer and once as seller. With (venue, symbol, trade_id) as the key the second side
-- was dropped as a "duplicate", and the journal's positions drifted from the venue's
-- balances. The side completes the key: each side of a trade is recorded exactly once.
ALTER TABLE fills DROP CONSTRAINT fills_pkey;
ALTER TABLE fills ADD PRIMARY KEY (venue, symbol, trade_id, side);
