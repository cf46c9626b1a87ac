"""Roles of API keys, ordered: viewer < trader < operator < admin.

Every route declares the least role it needs (:func:`bot4.api.auth.require`); a key
passes when its role is at least that. What each role may do:

========  ===========================================================================
viewer    read: status of the stack and the engines, the kill switch, its own key
trader    lower risk: halt (kill switch + engines), pause and drain an engine
operator  raise risk and run the desk: resume, leadership, models, flatten; audit log
admin     key management (create, rotate, revoke, list), decrypted audit parameters;
          only from the allow-listed client networks
========  ===========================================================================
"""

from __future__ import annotations

from enum import IntEnum


class Role(IntEnum):
    """A key's role; comparison follows privilege."""

    VIEWER = 1
    TRADER = 2
    OPERATOR = 3
    ADMIN = 4

    @property
    def label(self) -> str:
        """Return the lower-case name used in the API, the database and the CLI."""
        return self.name.lower()

    @classmethod
    def parse(cls, name: str) -> Role:
        """Return the role called ``name``.

        Raises:
            ValueError: no such role (the message lists the roles).
        """
        try:
            return cls[name.upper()]
        except KeyError:
            names = ", ".join(role.label for role in cls)
            raise ValueError(f"unknown role {name!r}; roles are {names}") from None
