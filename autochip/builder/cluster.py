"""A Dask distributed client for ``--scheduler tcp://HOST:PORT`` (sweeps and synthesis)."""

from __future__ import annotations

import atexit
from typing import Any

from autochip.errors import AutochipError

__all__ = ["SchedulerError", "close_clients", "connect"]


class SchedulerError(AutochipError):
    """The Dask scheduler cannot be reached."""


_CLIENTS: dict[str, Any] = {}


def connect(address: str, timeout: float = 10.0) -> Any:
    """A (cached) ``dask.distributed.Client`` for ``address``."""
    if not address.startswith(("tcp://", "tls://", "inproc://")):
        raise SchedulerError(
            f"--scheduler: expected an address like tcp://HOST:PORT, found '{address}'"
        )
    client = _CLIENTS.get(address)
    if client is not None and client.status != "running":  # its scheduler went away
        close_clients(address)
    if address not in _CLIENTS:
        from dask.distributed import Client

        try:
            _CLIENTS[address] = Client(  # type: ignore[no-untyped-call]
                address, timeout=timeout, set_as_default=False
            )
        except (OSError, TimeoutError) as exc:
            raise SchedulerError(
                f"--scheduler {address}: expected a running Dask scheduler, found none ({exc})"
            ) from None
    return _CLIENTS[address]


def close_clients(address: str | None = None) -> None:
    """Close the cached client of ``address`` (all of them by default), so that no background
    reconnection outlives the scheduler; registered to run at exit."""
    for key in [address] if address is not None else list(_CLIENTS):
        client = _CLIENTS.pop(key, None)
        if client is not None:
            client.close()


atexit.register(close_clients)
