"""The A/B traffic split: which algorithm a new session that names none gets.

Operators give algorithms a percent share of new sessions (``Algorithm.traffic_share``). The
shares either sum to 100 or are all 0 (then every new session gets the default). The draw is a
hash of the session id, not a random number, so a session's algorithm can be recomputed and a
seeded run (whose session ids are seeded) splits the same way every time. A logged-in viewer
keeps the algorithm of their latest session on every device while it still takes part in the
split; otherwise they are drawn again.

Plain Python: the shares come in as ``(algorithm id, percent)`` pairs, the ids go out.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

#: The shares are percents of this whole.
WHOLE = 100


class InvalidSplit(ValueError):
    """Shares that neither sum to 100 nor are all 0; the message says which and by how much."""


def check_shares(shares: Sequence[tuple[object, int]]) -> None:
    """Raise ``InvalidSplit`` unless the shares are each 0..100 and sum to 100 or are all 0."""
    for key, percent in shares:
        if not 0 <= percent <= WHOLE:
            raise InvalidSplit(f"the share of {key} is {percent} %; a share is 0 to {WHOLE} %")
    total = sum(percent for _, percent in shares)
    if total not in (0, WHOLE):
        raise InvalidSplit(f"the shares sum to {total} %; they must sum to {WHOLE} % "
                           f"(or all be 0 to send every new session to the default)")


def bucket_of(session_id: object) -> int:
    """A number from 0 to 9999 fixed by the session id (uniform over ids)."""
    digest = hashlib.sha256(str(session_id).encode()).digest()
    return int.from_bytes(digest[:8], "big") % (WHOLE * 100)


def draw(session_id: object, shares: Sequence[tuple[int, int]], default: int) -> int:
    """The algorithm id whose share the session's hash falls in (in order of id, so the split
    does not depend on the order the shares were read in); ``default`` when all shares are 0."""
    check_shares(shares)
    live = sorted((key, percent) for key, percent in shares if percent > 0)
    if not live:
        return default
    point = bucket_of(session_id) / 100  # 0 <= point < 100
    upper = 0
    for key, percent in live:
        upper += percent
        if point < upper:
            return key
    return live[-1][0]  # unreachable: the shares sum to 100


def in_split(algorithm: int, shares: Sequence[tuple[int, int]], default: int) -> bool:
    """Whether new sessions can get ``algorithm`` now: it has a share, or every share is 0 and it
    is the default."""
    if any(percent > 0 for _, percent in shares):
        return any(key == algorithm and percent > 0 for key, percent in shares)
    return algorithm == default


def assign(session_id: object, shares: Sequence[tuple[int, int]], default: int, *,
           sticky: int | None = None) -> int:
    """The algorithm of a new session: ``sticky`` (the algorithm of the viewer's latest session)
    while it is still in the split, else the hash draw."""
    if sticky is not None and in_split(sticky, shares, default):
        return sticky
    return draw(session_id, shares, default)
