"""Switchover, failover and rejoin of the local PostgreSQL pair, one small step each.

:class:`PgCluster` wraps a :class:`~infra.stack.postgres.PostgresPair` (two nodes, one
primary, one synchronous standby) and offers what the dr_failover workflow runs:

    planned:   preconditions → stop_primary_cleanly → wait_replayed → promote
               → rejoin → restore_sync
    unplanned: probe_down (or kill_primary in a drill) → promote → rejoin → restore_sync

Every step is synchronous (binaries and short connections; call it through
``asyncio.to_thread``), idempotent (a retried step finds its work done and checks it) and
refuses, changing nothing, when it would leave two writable primaries. Between
:meth:`PgCluster.promote` and :meth:`PgCluster.restore_sync` the new primary commits
without a synchronous standby: a deliberate, reported degraded window (like Patroni's
non-strict synchronous mode), since waiting for a standby that does not exist yet would
stop every write.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

import asyncpg
import structlog

from infra.postgres.node_ops import (
    DRIVER_ERRORS,
    child_pids,
    clear_stale_locks,
    run_sync,
    write_signal,
)
from infra.stack.errors import StackError
from infra.stack.pg_node import PgNodeComponent
from infra.stack.pgconf import quote, write_auto_conf
from infra.stack.postgres import SYNC_STANDBY_NAMES, PostgresPair
from infra.stack.process import port_is_free, process_start_ticks

log = structlog.get_logger(__name__)

Role = Literal["primary", "standby", "down"]
RejoinMethod = Literal["rewind", "basebackup", "unchanged"]

PROBE_TIMEOUT_S: Final = 0.3
"""A detection probe that gets no answer within this counts as failed."""
ASK_TIMEOUT_S: Final = 3.0
"""Bound of a role question outside detection (roles, replication)."""
QUERY_TIMEOUT_S: Final = 15.0
PROMOTE_WAIT_S: Final = 30
STREAM_WAIT_S: Final = 30.0
"""How long a rejoined node may take to stream from the new primary."""
CLEAN_STATES: Final = ("shut down", "shut down in recovery")
"""pg_controldata states pg_rewind accepts without crash recovery."""
_LSN: Final = re.compile(r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$")


class ClusterError(StackError):
    """A cluster step was refused or failed; ``action`` says what the operator does next.

    Part of the stack's error tree (``infra/stack/errors.py``), under ``StackError``.
    """


@dataclass(frozen=True, kw_only=True, slots=True)
class ReplicationState:
    """The pair's roles and its standby's replication, as the primary reports it.

    Attributes:
        roles: node name → ``primary``, ``standby`` or ``down`` (does not answer).
        primary: the only node answering as primary; None when none or both do.
        standby: the other node, when ``primary`` is known.
        streaming: the primary lists the standby in ``pg_stat_replication`` as streaming.
        sync_state: its ``sync_state`` there (``sync``, ``async``, ...); None if not listed.
        lag_bytes: WAL the primary wrote that the standby has not replayed yet.
        replay_lag_s: ``replay_lag`` in seconds; None when idle or not listed.
    """

    roles: Mapping[str, Role]
    primary: str | None
    standby: str | None
    streaming: bool
    sync_state: str | None
    lag_bytes: int | None
    replay_lag_s: float | None


class PgCluster:
    """The steps of a switchover or failover over one :class:`PostgresPair`."""

    def __init__(self, pair: PostgresPair) -> None:
        self.pair = pair
        self.runner = pair.runner

    # -- names --------------------------------------------------------------------------

    def node(self, name: str) -> PgNodeComponent:
        """Return the node called ``name`` (``postgres-a`` or ``postgres-b``).

        Raises:
            ClusterError: no node has that name.
        """
        for component in self.pair.nodes:
            if component.name == name:
                return component
        names = ", ".join(c.name for c in self.pair.nodes)
        raise ClusterError(
            "postgres", f"no node {name!r} in this pair", action=f"Use one of: {names}."
        )

    def other(self, name: str) -> PgNodeComponent:
        """Return the node that is not ``name``."""
        this = self.node(name)
        return next(c for c in self.pair.nodes if c is not this)

    # -- reading ------------------------------------------------------------------------

    def roles(self) -> dict[str, Role]:
        """Return each node's role; a node whose server does not answer is ``down``."""
        return {c.name: self._role(c, timeout_s=ASK_TIMEOUT_S) for c in self.pair.nodes}

    def replication(self) -> ReplicationState:
        """Return the roles and, from the primary's ``pg_stat_replication``, the standby's state."""
        roles = self.roles()
        primaries = [name for name, role in roles.items() if role == "primary"]
        if len(primaries) != 1:
            return ReplicationState(
                roles=roles,
                primary=None,
                standby=None,
                streaming=False,
                sync_state=None,
                lag_bytes=None,
                replay_lag_s=None,
            )
        primary = self.node(primaries[0])
        standby = self.other(primary.name)
        row = self._standby_row(primary, standby)
        return ReplicationState(
            roles=roles,
            primary=primary.name,
            standby=standby.name,
            streaming=row is not None and row["state"] == "streaming",
            sync_state=None if row is None else row["sync_state"],
            lag_bytes=None if row is None or row["lag_bytes"] is None else int(row["lag_bytes"]),
            replay_lag_s=None if row is None else row["replay_lag_s"],
        )

    def preconditions(self, max_lag_bytes: int) -> list[str]:
        """Return what forbids a planned switchover now; empty when it may go ahead.

        Changes nothing.

        Raises:
            ValueError: ``max_lag_bytes`` is negative.
        """
        if max_lag_bytes < 0:
            raise ValueError(f"max_lag_bytes must be >= 0, got {max_lag_bytes}")
        state = self.replication()
        primaries = [name for name, role in state.roles.items() if role == "primary"]
        if not primaries:
            return [f"no node answers as primary (roles: {dict(state.roles)})"]
        if len(primaries) > 1:
            return [f"both nodes answer as primary (split brain): {', '.join(primaries)}"]
        standby = state.standby or "the standby"
        if state.roles.get(standby) != "standby":
            return [f"{standby} is {state.roles.get(standby)}, not a running standby"]
        if not state.streaming:
            return [f"{standby} does not stream from {state.primary}"]
        problems = []
        if state.sync_state != "sync":
            problems.append(
                f"{standby} is {state.sync_state}, not sync: commits acknowledged by "
                f"{state.primary} alone could be missing on it"
            )
        if state.lag_bytes is None or state.lag_bytes > max_lag_bytes:
            problems.append(
                f"{standby} replay lag is {state.lag_bytes} bytes, the bound is {max_lag_bytes}"
            )
        return problems

    # -- planned switchover -------------------------------------------------------------

    def stop_primary_cleanly(self, name: str) -> str:
        """Stop the primary with a fast shutdown; return its shutdown checkpoint's LSN.

        A clean shutdown sends everything up to the shutdown checkpoint to a streaming
        standby before the server exits; :meth:`wait_replayed` then proves it arrived.
        Stopping an already cleanly stopped primary returns the same LSN again.

        Raises:
            ClusterError: the node is a standby, did not stop, or was not shut down cleanly.
        """
        component = self.node(name)
        if component.pid() is not None:
            role = self._role(component, timeout_s=ASK_TIMEOUT_S)
            if role != "primary":
                raise ClusterError(
                    name,
                    f"answers as {role}, not as the primary",
                    action="Check the roles (`bot4 stack status`).",
                )
            done = self._run(
                "pg_ctl", "-D", str(component.node.data_dir), "-m", "fast", "-w", "-t", "60", "stop"
            )
            if done.returncode != 0 and component.pid() is not None:
                raise ClusterError(
                    name,
                    f"pg_ctl stop failed: {done.stderr.strip()}",
                    action=f"Read {component.node.log_file}.",
                )
        control = self._controldata(component)
        state = control.get("Database cluster state")
        if state != "shut down":
            raise ClusterError(
                name,
                f"is not a cleanly stopped primary (cluster state: {state})",
                action="Its last WAL may not have reached the standby: run a failover "
                "(unplanned) instead of a switchover.",
            )
        lsn = control["Latest checkpoint location"]
        log.info("cluster_primary_stopped", node=name, checkpoint_lsn=lsn)
        return lsn

    def wait_replayed(self, standby: str, lsn: str, timeout_s: float = 30.0) -> float:
        """Wait until ``standby`` replayed WAL up to ``lsn``; return the seconds waited.

        Raises:
            ValueError: ``lsn`` is not an LSN (``X/Y``).
            ClusterError: not replayed within ``timeout_s``: do not promote that standby.
        """
        if not _LSN.match(lsn):
            raise ValueError(f"lsn must look like 0/3000028, got {lsn!r}")
        component = self.node(standby)
        started = time.monotonic()
        last: object = None
        while True:
            row = self._probe(
                component,
                "SELECT pg_last_wal_replay_lsn()::text AS replayed,"
                " pg_last_wal_replay_lsn() >= $1::text::pg_lsn AS done",
                lsn,
            )
            if row is not None and row["done"]:
                return time.monotonic() - started
            last = None if row is None else row["replayed"]
            if time.monotonic() - started > timeout_s:
                raise ClusterError(
                    standby,
                    f"has not replayed up to {lsn} after {timeout_s:g} s (replayed: {last})",
                    action="Do not promote it: it lacks the primary's last WAL. Start the old "
                    f"primary again and read {component.node.log_file}.",
                )
            time.sleep(0.05)

    def start_node(self, name: str) -> None:
        """Start a stopped node as what its files say (undoes an unfinished switchover).

        Raises:
            ClusterError: it would start as a primary while the other node is one.
        """
        component = self.node(name)
        if component.pid() is not None:
            return
        if not (component.node.data_dir / "standby.signal").exists():
            other = self.other(name)
            if self._role(other, timeout_s=ASK_TIMEOUT_S) == "primary":
                raise ClusterError(
                    name,
                    f"would start as a second primary: {other.name} is the primary",
                    action=f"Rejoin it as the standby of {other.name} instead.",
                )
        self._start(component)

    # -- unplanned failover -------------------------------------------------------------

    def kill_primary(self, name: str) -> None:
        """SIGKILL the node's postmaster and its processes, like a lost host; wait until gone.

        Killing a node that is already down does nothing.

        Raises:
            ClusterError: the node answers as a standby, or a process or its port survives.
        """
        component = self.node(name)
        if self._role(component, timeout_s=ASK_TIMEOUT_S) == "standby":
            raise ClusterError(
                name,
                "answers as a standby, not as the primary",
                action="Check the roles (`bot4 stack status`).",
            )
        pid = component.pid()
        if pid is None:
            return
        # The children must die too: each is its own process group, and an orphaned
        # backend would keep the shared memory that a later start refuses to share.
        victims = [pid, *child_pids(pid)]
        for victim in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 10.0
        node = component.node
        while time.monotonic() < deadline:
            alive = [v for v in victims if process_start_ticks(v) is not None]
            if not alive and port_is_free(self.pair.settings.host, node.port):
                log.warning("cluster_node_killed", node=name, pids=victims)
                return
            time.sleep(0.02)
        raise ClusterError(
            name,
            f"processes {alive} or port {node.port} survived SIGKILL",
            action="Find them with `ps -ef` and `ss -ltnp`.",
        )

    def probe_down(
        self, name: str, *, probes: int = 3, interval_s: float = 0.2, within_s: float = 30.0
    ) -> float:
        """Return the seconds until ``probes`` consecutive probes confirmed ``name`` down.

        A probe fails when the node does not answer ``pg_is_in_recovery()`` within
        ``PROBE_TIMEOUT_S`` (refused, timed out, or refusing connections). An answer as a
        primary resets the count.

        Raises:
            ValueError: a bound is out of range.
            ClusterError: still answering after ``within_s`` (not gone: do not fail over),
                or it answers as a standby (it is not the primary).
        """
        if probes < 1 or interval_s < 0 or within_s <= 0:
            raise ValueError(
                f"need probes >= 1, interval_s >= 0, within_s > 0; got "
                f"{probes}, {interval_s}, {within_s}"
            )
        component = self.node(name)
        started = time.monotonic()
        failed = 0
        while True:
            role = self._role(component, timeout_s=PROBE_TIMEOUT_S)
            if role == "standby":
                raise ClusterError(
                    name,
                    "answers as a standby, not as the primary",
                    action="Check the roles; fail over only a lost primary.",
                )
            failed = failed + 1 if role == "down" else 0
            elapsed = time.monotonic() - started
            if failed >= probes:
                log.warning("cluster_primary_down", node=name, probes=probes, seconds=elapsed)
                return elapsed
            if elapsed + interval_s > within_s:
                raise ClusterError(
                    name,
                    f"was not confirmed down within {within_s:g} s ({role} at the last probe)",
                    action="It is not gone: run a planned switchover, or stop it first.",
                )
            time.sleep(interval_s)

    # -- both ---------------------------------------------------------------------------

    def promote(self, name: str) -> float:
        """Promote the standby ``name`` to primary; return the seconds it took.

        Before promoting, its ``synchronous_standby_names`` is emptied so it commits
        alone (the degraded window until :meth:`restore_sync`). Afterwards the stale
        ``primary_conninfo`` is removed and the deposed node, when stopped, is fenced on
        disk with a ``standby.signal``: started again by anyone, it comes up read-only.
        Promoting the primary changes nothing.

        Raises:
            ClusterError: the other node is (or may be) a running primary, ``name`` is
                down, or the promotion did not finish.
        """
        started = time.monotonic()
        component = self.node(name)
        other = self.other(name)
        self._refuse_live_primary(other, doing=f"promote {name}")
        role = self._role(component, timeout_s=ASK_TIMEOUT_S)
        if role == "down":
            raise ClusterError(
                name,
                "does not answer: nothing to promote",
                action=f"Start it and check {component.node.log_file}.",
            )
        if role == "standby":
            self._set(component, "synchronous_standby_names", "")
            promoting = time.monotonic()
            promoted = self._query(
                component,
                "SELECT pg_promote(true, $1) AS done",
                PROMOTE_WAIT_S,
                timeout_s=PROMOTE_WAIT_S + 5,
            )
            if (
                promoted is None
                or not promoted["done"]
                or self._role(component, timeout_s=ASK_TIMEOUT_S) != "primary"
            ):
                raise ClusterError(
                    name,
                    f"not promoted within {PROMOTE_WAIT_S} s",
                    action=f"Read {component.node.log_file}.",
                )
            log.info("cluster_pg_promote", node=name, seconds=time.monotonic() - promoting)
        # Without standby.signal primary_conninfo is ignored; removed all the same so the
        # files never point at the deposed primary (pg_rewind -R writes a fresh one).
        self._query(component, "ALTER SYSTEM RESET primary_conninfo")
        self._query(component, "SELECT pg_reload_conf()")
        if (component.node.data_dir / "standby.signal").exists():
            raise ClusterError(
                name,
                "still has standby.signal after the promotion",
                action=f"Read {component.node.log_file}.",
            )
        self._fence(other)
        seconds = time.monotonic() - started
        log.warning("cluster_promoted", node=name, seconds=seconds, degraded=True)
        return seconds

    def rejoin(self, old: str, *, new_primary: str) -> RejoinMethod:
        """Make ``old`` a streaming standby of ``new_primary``; return how.

        ``rewind``: pg_rewind from the new primary (fast: copies what diverged).
        ``basebackup``: a fresh copy, when the rewind failed (a failed rewind can leave the
        target unusable, so it is replaced). ``unchanged``: it already streams from it.
        Synchronous replication is :meth:`restore_sync`'s job.

        Raises:
            ClusterError: ``new_primary`` is not the primary, ``old`` runs as a primary
                (it may hold writes the new one lacks), or neither way worked.
        """
        target, source = self.node(old), self.node(new_primary)
        if target is source:
            raise ClusterError(old, "cannot rejoin itself", action="Name the other node.")
        if self._role(source, timeout_s=ASK_TIMEOUT_S) != "primary":
            raise ClusterError(new_primary, "is not a running primary", action="Promote it first.")
        if target.pid() is not None:
            role = self._role(target, timeout_s=ASK_TIMEOUT_S)
            if role == "standby" and self._streams(source, target):
                return "unchanged"
            fenced = (target.node.data_dir / "standby.signal").exists()
            if role == "primary" or not fenced:
                raise ClusterError(
                    old,
                    f"runs as a primary ({role}): it may hold writes {new_primary} lacks",
                    action="Compare both nodes before discarding anything; stop it "
                    "(pg_ctl stop -m fast) and rejoin again.",
                )
            target.stop()  # a standby of nobody (restarted after its fence), or lagging
        # Makes the promotion's timeline visible in the control file pg_rewind reads.
        self._query(source, "CHECKPOINT")
        started = time.monotonic()
        if self._rewind(target, source=source):
            try:
                self._start_standby(target, source=source)
            except ClusterError as e:
                log.warning("cluster_rewound_node_failed", node=old, error=str(e))
            else:
                log.info(
                    "cluster_rejoined",
                    node=old,
                    method="rewind",
                    seconds=time.monotonic() - started,
                )
                return "rewind"
        started = time.monotonic()
        self._basebackup(target, source=source)
        self._start_standby(target, source=source)
        log.info(
            "cluster_rejoined", node=old, method="basebackup", seconds=time.monotonic() - started
        )
        return "basebackup"

    def restore_sync(self, primary: str, standby: str, timeout_s: float = 30.0) -> float:
        """Make ``standby`` synchronous again on ``primary``; return the seconds it took.

        Sets the pair's ``synchronous_standby_names`` only once the standby streams (set
        earlier, every commit would wait for it), and empties it again when the standby
        does not turn ``sync`` within the bound, so writes never hang on it.

        Raises:
            ClusterError: ``primary`` is not one, or ``standby`` does not stream or
                turn sync within ``timeout_s`` (the primary stays degraded).
        """
        started = time.monotonic()
        source, target = self.node(primary), self.node(standby)
        if self._role(source, timeout_s=ASK_TIMEOUT_S) != "primary":
            raise ClusterError(
                primary, "is not a running primary", action="Check the roles (`bot4 stack status`)."
            )
        action = (
            f"Commits on {primary} are acknowledged without a standby: read "
            f"{target.node.log_file} and rejoin {standby}."
        )
        if not self._wait(lambda: self._streams(source, target), timeout_s=timeout_s):
            raise ClusterError(standby, f"does not stream from {primary}", action=action)
        self._set(source, "synchronous_standby_names", SYNC_STANDBY_NAMES)
        remaining = max(1.0, timeout_s - (time.monotonic() - started))
        if not self._wait(lambda: self._streams(source, target, sync=True), timeout_s=remaining):
            self._set(source, "synchronous_standby_names", "")
            raise ClusterError(
                standby, f"streams from {primary} but did not become sync", action=action
            )
        seconds = time.monotonic() - started
        log.info("cluster_sync_restored", primary=primary, standby=standby, seconds=seconds)
        return seconds

    # -- rejoin, privately --------------------------------------------------------------

    def _rewind(self, target: PgNodeComponent, *, source: PgNodeComponent) -> bool:
        """Run pg_rewind on the stopped ``target``; False when it failed."""
        node = target.node
        state = self._controldata(target).get("Database cluster state")
        if state is not None and state not in CLEAN_STATES:
            # Crashed (killed). pg_rewind needs a clean shutdown, and by default (PG 13+)
            # gets one by running crash recovery in single-user mode (`postgres --single`):
            # that never opens a port or socket, so no client can write to the deposed
            # primary even for a moment. Starting it normally would open its port as a
            # writable primary. Single-user mode refuses standby mode, so our fence
            # (standby.signal, see promote) goes for that run; -R writes it back.
            (node.data_dir / "standby.signal").unlink(missing_ok=True)
        clear_stale_locks(node)  # pg_rewind's single-user run takes the lock too
        source_server = (
            f"host={self.pair.settings.host} port={source.node.port} "
            f"user={self.pair.settings.user} dbname=postgres"
        )
        started = time.monotonic()
        done = self._run(
            "pg_rewind", "-D", str(node.data_dir), f"--source-server={source_server}", "-R"
        )
        if done.returncode != 0:
            log.warning(
                "cluster_rewind_failed",
                node=target.name,
                state=state,
                error=done.stderr.strip()[-2000:],
            )
            return False
        log.info(
            "cluster_rewound", node=target.name, state=state, seconds=time.monotonic() - started
        )
        self._configure_standby(target, source=source)
        return True

    def _basebackup(self, target: PgNodeComponent, *, source: PgNodeComponent) -> None:
        """Replace ``target``'s data directory with a fresh copy of ``source``."""
        node = target.node
        if target.pid() is not None:
            self._run("pg_ctl", "-D", str(node.data_dir), "-m", "immediate", "-w", "stop")
        shutil.rmtree(node.data_dir, ignore_errors=True)
        conninfo = (
            f"host={self.pair.settings.host} port={source.node.port} "
            f"user={self.pair.settings.user} application_name={node.application_name}"
        )
        started = time.monotonic()
        done = self._run(
            "pg_basebackup", "-d", conninfo, "-D", str(node.data_dir),
            "-R", "-X", "stream", "-c", "fast",
        )  # fmt: skip
        if done.returncode != 0:
            shutil.rmtree(node.data_dir, ignore_errors=True)  # never half a cluster
            raise ClusterError(
                target.name,
                f"neither pg_rewind nor pg_basebackup worked: {done.stderr.strip()}",
                action=f"Check that {source.name} runs, then rejoin again.",
            )
        log.info("cluster_base_backup", node=target.name, seconds=time.monotonic() - started)
        self._configure_standby(target, source=source)

    def _configure_standby(self, target: PgNodeComponent, *, source: PgNodeComponent) -> None:
        """Give a copied data directory its own address and the name the sync list expects.

        pg_rewind and pg_basebackup copy the source's postgresql.auto.conf (its port and
        socket, its emptied synchronous_standby_names), and pg_rewind's primary_conninfo
        carries no application_name: the standby would stream as "walreceiver" and never
        match ``synchronous_standby_names``.
        """
        node = target.node
        settings = self.pair.settings
        write_auto_conf(
            node.data_dir,
            {
                "listen_addresses": settings.host,
                "port": str(node.port),
                "unix_socket_directories": str(node.socket_dir),
                "primary_conninfo": f"host={settings.host} port={source.node.port} "
                f"user={settings.user} application_name={node.application_name}",
                "synchronous_standby_names": SYNC_STANDBY_NAMES,
                "synchronous_commit": "remote_apply",
            },
        )
        write_signal(node.data_dir)

    def _start_standby(self, target: PgNodeComponent, *, source: PgNodeComponent) -> None:
        """Start ``target`` and wait until ``source`` lists it streaming."""
        self._start(target)
        if not self._wait(lambda: self._streams(source, target), timeout_s=STREAM_WAIT_S):
            raise ClusterError(
                target.name,
                f"started but does not stream from {source.name}",
                action=f"Read {target.node.log_file}.",
            )

    # -- helpers ------------------------------------------------------------------------

    def _refuse_live_primary(self, component: PgNodeComponent, *, doing: str) -> None:
        """Raise when ``component`` answers as primary, or runs without answering."""
        role = self._role(component, timeout_s=ASK_TIMEOUT_S)
        if role == "primary" or (role == "down" and component.pid() is not None):
            state = "answers as primary" if role == "primary" else "runs but does not answer"
            raise ClusterError(
                component.name,
                f"{state}: refusing to {doing} (two writable primaries)",
                action="Stop it cleanly (planned) or kill it (failover) first.",
            )

    def _fence(self, component: PgNodeComponent) -> None:
        """Mark a stopped deposed primary's files as a standby's, so it restarts read-only."""
        data_dir = component.node.data_dir
        if component.pid() is None and (data_dir / "PG_VERSION").exists():
            write_signal(data_dir)

    def _start(self, component: PgNodeComponent) -> None:
        clear_stale_locks(component.node)
        try:
            component.start()
        except StackError as e:
            raise ClusterError(component.name, e.problem, action=e.action) from e

    def _streams(
        self, primary: PgNodeComponent, standby: PgNodeComponent, *, sync: bool = False
    ) -> bool:
        row = self._standby_row(primary, standby)
        return (
            row is not None
            and row["state"] == "streaming"
            and (not sync or row["sync_state"] == "sync")
        )

    def _standby_row(
        self, primary: PgNodeComponent, standby: PgNodeComponent
    ) -> asyncpg.Record | None:
        return self._probe(
            primary,
            "SELECT state, sync_state,"
            " pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint AS lag_bytes,"
            " extract(epoch FROM replay_lag)::float8 AS replay_lag_s"
            " FROM pg_stat_replication WHERE application_name = $1"
            " ORDER BY state = 'streaming' DESC LIMIT 1",
            standby.node.application_name,
        )

    def _set(self, component: PgNodeComponent, setting: str, value: str) -> None:
        """ALTER SYSTEM (the setting is per node, never replicated), reload, see it applied."""
        self._query(component, f"ALTER SYSTEM SET {setting} = {quote(value)}")
        self._query(component, "SELECT pg_reload_conf()")

        def applied_now() -> bool:
            row = self._probe(component, "SELECT current_setting($1) = $2 AS ok", setting, value)
            return row is not None and bool(row["ok"])

        applied = self._wait(applied_now, timeout_s=10.0)
        if not applied:
            raise ClusterError(
                component.name,
                f"{setting} not applied after a reload",
                action=f"Read {component.node.log_file}.",
            )

    @staticmethod
    def _wait(check: Callable[[], bool], *, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while True:
            if check():
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    def _controldata(self, component: PgNodeComponent) -> dict[str, str]:
        """Return pg_controldata's fields; empty when it cannot read the control file."""
        done = self._run("pg_controldata", "-D", str(component.node.data_dir))
        if done.returncode != 0:
            return {}
        fields = (line.partition(":") for line in done.stdout.splitlines())
        return {key.strip(): value.strip() for key, _, value in fields}

    def _run(self, tool: str, *args: str) -> subprocess.CompletedProcess[str]:
        try:
            return self.runner.run(tool, *args, timeout_s=180)
        except subprocess.TimeoutExpired as e:
            return subprocess.CompletedProcess(
                e.cmd, returncode=-1, stdout="", stderr=f"{tool} timed out after 180 s"
            )

    # -- SQL: the one boundary where asyncpg's errors are translated ----------------------

    def _role(self, component: PgNodeComponent, *, timeout_s: float) -> Role:
        row = self._probe(component, "SELECT pg_is_in_recovery() AS r", timeout_s=timeout_s)
        if row is None:
            return "down"
        return "standby" if row["r"] else "primary"

    def _probe(
        self, component: PgNodeComponent, sql: str, *args: object, timeout_s: float = ASK_TIMEOUT_S
    ) -> asyncpg.Record | None:
        """Return the first row, or None when the node does not answer (or errs)."""
        try:
            return self._fetchrow(component, sql, args, timeout_s)
        except DRIVER_ERRORS:
            return None

    def _query(
        self,
        component: PgNodeComponent,
        sql: str,
        *args: object,
        timeout_s: float = QUERY_TIMEOUT_S,
    ) -> asyncpg.Record | None:
        """Return the first row (None for a statement).

        Raises:
            ClusterError: the node did not answer or the statement failed.
        """
        try:
            return self._fetchrow(component, sql, args, timeout_s)
        except DRIVER_ERRORS as e:
            raise ClusterError(
                component.name,
                f"{sql.split(maxsplit=1)[0]} failed: {type(e).__name__}: {e}",
                action=f"Check the node (`bot4 stack status`) and read {component.node.log_file}.",
            ) from e

    def _fetchrow(
        self, component: PgNodeComponent, sql: str, args: tuple[object, ...], timeout_s: float
    ) -> asyncpg.Record | None:
        settings = self.pair.settings

        async def fetch() -> asyncpg.Record | None:
            connection = await asyncpg.connect(
                host=settings.host,
                port=component.node.port,
                user=settings.user,
                database="postgres",
                timeout=timeout_s,
                server_settings={"application_name": "bot4-cluster"},
            )
            try:
                return await connection.fetchrow(sql, *args, timeout=timeout_s)
            finally:
                await connection.close(timeout=timeout_s)

        return run_sync(asyncio.wait_for(fetch(), timeout_s + 1.0))
