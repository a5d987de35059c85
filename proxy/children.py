"""Child processes that cannot outlive the process that started them (Linux ``prctl``).

Used by ``serve --workers`` (``proxy.workers``) and by the dev tools' OpenBao server
(``proxy.dev.devvault``): both start children that must stop when their parent does, even
when the parent is killed with SIGKILL and no cleanup code runs.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGTERM when this process dies (Linux).

    Covers what no cleanup code can: the parent killed with SIGKILL or crashing. The
    death signal follows the *thread* that forked, so start children from the main thread.
    """
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()

    def preexec() -> None:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl: nobody would signal us
            os._exit(1)

    return preexec
