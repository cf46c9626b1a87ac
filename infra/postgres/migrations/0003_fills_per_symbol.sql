-- A venue numbers its trades per symbol (Binance: trade ids count up per market), so the
-- same trade id appears on BTCUSDT and ETHUSDT. The fill key is (venue, symbol, trade_id);
-- with (venue, trade_id) a fill was silently dropped as a "duplicate" of another symbol's.
ALTER TABLE fills DROP CONSTRAINT fills_pkey;
ALTER TABLE fills ADD PRIMARY KEY (venue, symbol, trade_id);
