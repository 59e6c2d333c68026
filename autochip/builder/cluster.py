"""A Dask distributed client for ``--scheduler tcp://HOST:PORT`` (sweeps and synthesis)."""

from __future__ import annotations

from typing import Any

from autochip.errors import AutochipError

__all__ = ["SchedulerError", "connect"]


class SchedulerError(AutochipError):
    """The Dask scheduler cannot be reached."""


_CLIENTS: dict[str, Any] = {}


def connect(address: str, timeout: float = 10.0) -> Any:
    """A (cached) ``dask.distributed.Client`` for ``address``."""
    if not address.startswith(("tcp://", "tls://", "inproc://")):
        raise SchedulerError(
            f"--scheduler: expected an address like tcp://HOST:PORT, found '{address}'"
        )
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
