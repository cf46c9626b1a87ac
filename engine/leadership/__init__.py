"""Leadership: one lease row in PostgreSQL with a fencing epoch (DESIGN.md §4)."""

from engine.leadership.lease import Lease, LeaseLostError, LeaseStatus

__all__ = ["Lease", "LeaseLostError", "LeaseStatus"]
