-- Execution quality (issue 10): whether each fill of ours rested (maker) or took liquidity
-- (taker), as the venue reported it. The order's type cannot tell: a limit order that
-- crosses on arrival takes. NULL for fills the venue did not qualify and for fills
-- journaled before this column existed.
ALTER TABLE fills ADD COLUMN liquidity text CHECK (liquidity IN ('maker', 'taker'));
