"""The open-files limit (RLIMIT_NOFILE) of a process that holds many sockets.

Every connection is a file descriptor: a server holding a websocket per machine runtime, or a
simulator holding one per simulated machine, needs about one per connection. Linux starts a
process with a soft limit of 1,024 by default while it may go up to a hard limit that is often
far higher. Past the soft limit ``accept()`` and ``connect()`` fail with EMFILE ("Too many open
files"): machines cannot connect, and the process may not even open a database file. So
``deskfleet serve`` and ``deskfleet simulate`` raise their soft limit to the hard limit at start
(no privilege is needed for that), log what they got, and warn when it still falls short of
what they were asked to hold; only the hard limit needs the operator.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("deskfleet.limits")

# Descriptors a process keeps for itself besides its connections: the database file and its WAL,
# the database pools, the listening socket, the event loop's own, logs.
RESERVED_FILES = 100
# Where the hard limit is "unlimited" the kernel still caps the soft one: Linux at fs.nr_open,
# macOS at OPEN_MAX.
NR_OPEN = Path("/proc/sys/fs/nr_open")
MACOS_OPEN_MAX = 10_240


@dataclass(frozen=True)
class OpenFiles:
    before: int  # the soft limit the process started with
    soft: int  # the soft limit now
    hard: int

    @property
    def sockets(self) -> int:
        """Roughly how many connections the soft limit leaves room for."""
        return max(0, self.soft - RESERVED_FILES)


def raise_open_files_limit() -> OpenFiles | None:
    """Raise the soft RLIMIT_NOFILE to the hard limit where allowed; None where the platform has
    no such limit (Windows)."""
    if sys.platform == "win32":
        return None
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:
        try:
            target = int(NR_OPEN.read_text())
        except (OSError, ValueError):
            target = MACOS_OPEN_MAX
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError) as exc:
            log.debug("cannot raise the open-files limit to %d: %s", target, exc)
    raised, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return OpenFiles(before=soft, soft=raised, hard=hard)


def ensure_open_files(connections: int, what: str) -> OpenFiles | None:
    """Raise the limit (:func:`raise_open_files_limit`), log it on one INFO line, and warn on one
    WARNING line when it leaves room for fewer than ``connections`` sockets; ``what`` says
    where that number comes from ("planned (DESKFLEET_PLANNED_CONNECTIONS)")."""
    limits = raise_open_files_limit()
    if limits is None:
        return None
    log.info(
        "open-files limit %d (started with %d, hard limit %d): room for about %d connections",
        limits.soft,
        limits.before,
        limits.hard,
        limits.sockets,
    )
    if limits.sockets < connections:
        needed = connections + RESERVED_FILES
        log.warning(
            "the open-files limit is %d (hard limit %d): room for about %d connections, fewer "
            "than the %d %s; raise it with `ulimit -n %d` in the shell that starts it "
            "(past the hard limit as root, or nofile in /etc/security/limits.conf), or "
            "LimitNOFILE=%d in its systemd unit",
            limits.soft,
            limits.hard,
            limits.sockets,
            connections,
            what,
            needed,
            needed,
        )
    return limits
