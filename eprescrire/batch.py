"""Run the same work over many inputs, in several processes when it is CPU-bound.

Results come back in input order whatever the number of processes. Workers are forked from
the parent after it has loaded what they share (credentials, trust store), so that nothing
secret is serialised, written or derived again: a forked child inherits the parent's memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

_shared: dict[str, Any] = {}


def share(**values: Any) -> None:
    """Make values visible to workers forked after this call (and to the parent itself)."""
    _shared.update(values)


def shared(name: str) -> Any:
    return _shared[name]


def run(
    work: Callable[[T], R],
    items: Iterable[T],
    jobs: int = 1,
    *,
    chunksize: int = 4,
) -> Iterator[R]:
    """``work(item)`` for each item, in order; ``jobs`` > 1 uses that many forked processes.

    ``work`` must be a module-level function and must not raise for bad input (it returns a
    result describing the failure instead), so that one bad input never stops the others.
    """
    if jobs <= 1:
        for item in items:
            yield work(item)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    try:
        context = multiprocessing.get_context("fork")
    except ValueError:  # platforms without fork: run in-process rather than re-deriving secrets
        yield from run(work, items, 1)
        return
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        yield from pool.map(work, items, chunksize=chunksize)
