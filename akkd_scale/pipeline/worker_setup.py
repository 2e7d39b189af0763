"""Preloaded into every LocalCluster worker process (``distributed`` preload): the command that started the
cluster owns Ctrl-C. A terminal sends SIGINT to the whole process group; without this each worker printed
its own KeyboardInterrupt traceback while the client was already shutting the cluster down cleanly."""
from __future__ import annotations

import logging
import signal
import threading


def _interrupted(signum, frame) -> None:
    """The command is closing the cluster: its shutdown warnings (cancelled tasks) are expected, not news."""
    logging.getLogger("distributed").setLevel(logging.CRITICAL)


def dask_setup(worker) -> None:  # noqa: ARG001  (distributed's preload hook)
    """On SIGINT this worker keeps running and stays quiet; it ends when its nanny closes it."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _interrupted)
