"""Counter-based random numbers: splitmix64 hashes of integer keys, vectorized with numpy.

Hashing (seed, stream, key, index) instead of drawing from a sequential generator lets any
value be computed on its own, in any order (random access).
"""

from __future__ import annotations

import hashlib

import numpy as np
from numpy.typing import ArrayLike, NDArray

FloatArray = NDArray[np.float64]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_LOW32 = np.uint64(0xFFFFFFFF)
_S11, _S27, _S30, _S31, _S32 = (np.uint64(n) for n in (11, 27, 30, 31, 32))


def _mix(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """The splitmix64 finalizer: a bijective scramble of 64-bit words."""
    x = x + _GOLDEN
    x = (x ^ (x >> _S30)) * _M1
    x = (x ^ (x >> _S27)) * _M2
    return x ^ (x >> _S31)


def hash_keys(*parts: ArrayLike) -> NDArray[np.uint64]:
    """Hash integers (broadcast together) into uniformly distributed 64-bit words."""
    h = np.zeros((), dtype=np.uint64)
    with np.errstate(over="ignore"):  # 64-bit wrap-around is the point
        for part in parts:
            arr = np.asarray(part)
            if arr.dtype != np.uint64:
                arr = arr.astype(np.int64).astype(np.uint64)
            h = _mix(h ^ arr)
    return np.asarray(h)


def uniform(h: NDArray[np.uint64]) -> FloatArray:
    """Uniform numbers in [0, 1) from hashed words."""
    return (h >> _S11).astype(np.float64) * (1.0 / 9007199254740992.0)


def normal(h: NDArray[np.uint64]) -> FloatArray:
    """Standard normal numbers from hashed words (Box-Muller on the two 32-bit halves)."""
    u1 = ((h >> _S32).astype(np.float64) + 0.5) * (1.0 / 4294967296.0)
    u2 = (h & _LOW32).astype(np.float64) * (1.0 / 4294967296.0)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def hash_indices(prefix: NDArray[np.uint64], index: NDArray[np.int64]) -> NDArray[np.uint64]:
    """``hash_keys(*parts, index)`` for an already hashed ``prefix`` of the parts."""
    return _mix(prefix ^ index.astype(np.uint64))


def string_key(text: str) -> int:
    """A stable 64-bit key for a string (Python's ``hash`` is salted per process)."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
