"""glibc's `rand()` after `srand(seed)`, in Python: darknet draws its random numbers with it (calc_anchors' k-means
starts from centres picked by `rand() % n`), so the same seed gives darknet's numbers, on any platform.

glibc's default generator (`random_r`, TYPE_3) is an additive lagged-Fibonacci generator over 34 words of state:
r[0] = seed (0 taken as 1), r[i] = 16807·r[i-1] mod (2^31 - 1) for i < 31, r[31..33] = r[0..2], then
r[i] = r[i-3] + r[i-31] mod 2^32; outputs are r[i] >> 1 from i = 344 on (the first 310 are thrown away).
"""
from __future__ import annotations

_DEGREE, _SEPARATION, _DISCARD = 31, 3, 310  # TYPE_3: x^31 + x^3 + 1; srandom_r throws away 10 × 31 outputs
_MODULUS = 2147483647  # 2^31 - 1, of the seeding's Lehmer generator
_MASK = 0xFFFFFFFF


class CRandom:
    """`rand()` of glibc seeded as `srand(seed)`.

    Args:
        seed (int): what `srand` is given, 0 to 2^32 - 1 (darknet: `time(0)`); 0 seeds as 1, as glibc does.

    Example:
        >>> r = CRandom(1)
        >>> [r.rand() for _ in range(3)]  # glibc's rand() without srand, or after srand(1)
        [1804289383, 846930886, 1681692777]
    """

    def __init__(self, seed: int) -> None:
        if not 0 <= seed <= _MASK:
            raise ValueError(f"srand takes an unsigned int (0 to {_MASK}), not {seed}")
        word = seed or 1
        word -= (word & 0x80000000) << 1  # state words are int32_t: a seed above 2^31 - 1 is negative there
        state = [word]
        for _ in range(1, _DEGREE):
            # 16807·word mod (2^31 - 1) by Schrage's method in int32, as srandom_r computes it (C's / truncates)
            high = int(word / 127773)
            low = word - high * 127773
            word = 16807 * low - 2836 * high
            if word < 0:
                word += _MODULUS
            state.append(word)
        self._state = [value & _MASK for value in state]
        self._front, self._rear = _SEPARATION, 0
        for _ in range(_DISCARD):
            self.rand()

    def rand(self) -> int:
        """The next `rand()`: 0 to RAND_MAX (2^31 - 1)."""
        state, front, rear = self._state, self._front, self._rear
        value = state[front] = (state[front] + state[rear]) & _MASK
        self._front, self._rear = (front + 1) % _DEGREE, (rear + 1) % _DEGREE
        return value >> 1
