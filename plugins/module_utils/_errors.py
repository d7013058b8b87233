# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One exception type for every module, caught once in each entry file.

Messages are shaped "<operation> <object>: <cause>" so an operator reads
what was being done, to what, and why it failed, in one line.
"""

from __future__ import annotations


class RunbookError(Exception):
    """A failure the operator can act on; never carries a secret."""

    def __init__(self, operation: str, target: str, cause: object) -> None:
        self.operation = operation
        self.target = target
        self.cause = str(cause)
        super().__init__(f"{operation} {target}: {self.cause}")
