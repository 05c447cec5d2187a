"""Run the same work over many inputs, in several processes when it is CPU-bound.

Results come back in input order whatever the number of processes. Workers are forked from
the parent after it has loaded what they share (credentials, trust store): the work's
``context`` (a typed request) is inherited through the fork, never serialised, so that nothing
secret is written or derived again. Only the items and the results cross between processes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

C = TypeVar("C")
T = TypeVar("T")
R = TypeVar("R")

# What the forked workers inherit: set by run() just before the pool forks them.
_work: Callable[[Any, Any], Any] | None = None
_context: Any = None


def _call(item: Any) -> Any:
    assert _work is not None
    return _work(_context, item)


def run(
    work: Callable[[C, T], R],
    context: C,
    items: Iterable[T],
    jobs: int = 1,
    *,
    chunksize: int = 4,
) -> Iterator[R]:
    """``work(context, item)`` for each item, in order; ``jobs`` > 1 uses that many forked
    processes, which inherit ``context``.

    ``work`` must not raise for bad input (it returns a result describing the failure instead),
    so that one bad input never stops the others.
    """
    global _work, _context
    if jobs <= 1:
        for item in items:
            yield work(context, item)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    try:
        mp_context = multiprocessing.get_context("fork")
    except ValueError:  # platforms without fork: run in-process rather than re-deriving secrets
        yield from run(work, context, items, 1)
        return
    _work, _context = work, context
    try:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=mp_context) as pool:
            yield from pool.map(_call, items, chunksize=chunksize)
    finally:
        _work, _context = None, None
