# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One exception type for every module, caught once in each entry file.

Messages are shaped "<operation> <object>: <cause>" so an operator reads
what was being done, to what, and why it failed, in one line.
"""

from __future__ import annotations

import math


class RunbookError(Exception):
    """A failure the operator can act on; never carries a secret."""

    def __init__(self, operation: str, target: str, cause: object) -> None:
        self.operation = operation
        self.target = target
        self.cause = str(cause)
        super().__init__(f"{operation} {target}: {self.cause}")


def out_of_range(name: str, value: object, minimum: float | None = None, maximum: float | None = None,
                 above: float | None = None) -> str | None:
    """The message refusing a number outside its range (NaN and infinities too), or None if it is fine.

    ``minimum``/``maximum`` are inclusive bounds, ``above`` an exclusive lower
    bound (a timeout must be above 0). None (option not given) is fine.
    """
    if value is None:
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return f"{name} must be a number, got {value!r}"
    if not math.isfinite(number):
        return f"{name} must be a finite number, got {value!r}"
    if above is not None and number <= above:
        return f"{name} must be above {_bound(above)}, got {value!r}"
    if minimum is not None and number < minimum:
        return f"{name} must be at least {_bound(minimum)}, got {value!r}"
    if maximum is not None and number > maximum:
        return f"{name} must be at most {_bound(maximum)}, got {value!r}"
    return None


def _bound(number: float) -> str:
    """A bound as written in the docs: whole numbers in full (2147483647, not 2.14748e+09)."""
    return str(int(number)) if float(number).is_integer() else f"{number:g}"
