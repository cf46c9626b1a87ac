"""Account balances in integer asset units: free and locked, moved only by the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from infra.exchange_sim.errors import INSUFFICIENT_BALANCE, OrderRejectedError

# Fees go to this account, so the total of every asset over all accounts never changes.
FEE_ACCOUNT: Final = "__fees__"


@dataclass(slots=True)
class Balances:
    """Free and locked units per asset of one account."""

    free: dict[str, int] = field(default_factory=dict)
    locked: dict[str, int] = field(default_factory=dict)

    def assets(self) -> list[str]:
        """Return every asset the account ever held, sorted."""
        return sorted(set(self.free) | set(self.locked))


class Ledger:
    """All accounts' balances, with the moves matching needs."""

    def __init__(self) -> None:
        self.accounts: dict[str, Balances] = {FEE_ACCOUNT: Balances()}

    def account(self, name: str) -> Balances:
        """Return an account's balances, creating an empty account on first use."""
        balances = self.accounts.get(name)
        if balances is None:
            balances = self.accounts[name] = Balances()
        return balances

    def credit(self, name: str, asset: str, units: int) -> None:
        """Add free units (a deposit, or what a trade delivers)."""
        free = self.account(name).free
        free[asset] = free.get(asset, 0) + units

    def lock(self, name: str, asset: str, units: int) -> None:
        """Move free units to locked.

        Raises:
            OrderRejectedError: the account has fewer free units (Binance -2010).
        """
        balances = self.account(name)
        if balances.free.get(asset, 0) < units:
            raise OrderRejectedError(INSUFFICIENT_BALANCE)
        balances.free[asset] -= units
        balances.locked[asset] = balances.locked.get(asset, 0) + units

    def unlock(self, name: str, asset: str, units: int) -> None:
        """Move locked units back to free (cancel, expiry, price improvement)."""
        balances = self.account(name)
        balances.locked[asset] -= units
        balances.free[asset] = balances.free.get(asset, 0) + units

    def spend_locked(self, name: str, asset: str, units: int) -> None:
        """Remove locked units that a trade delivers to the counterparty."""
        self.account(name).locked[asset] -= units

    def spend_free(self, name: str, asset: str, units: int) -> None:
        """Remove free units (market buys pay from free balance)."""
        self.account(name).free[asset] -= units

    def total(self, asset: str) -> int:
        """Return the units of ``asset`` over all accounts, fees included."""
        return sum(b.free.get(asset, 0) + b.locked.get(asset, 0) for b in self.accounts.values())
