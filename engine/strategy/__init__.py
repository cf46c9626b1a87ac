"""Market-making strategy: its frozen configuration (the decision kernel is quote_nb)."""

from engine.strategy.config import MarketMakerConfig

__all__ = ["MarketMakerConfig"]
