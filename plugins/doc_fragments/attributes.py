# Copyright: (c) 2026, AI Agents Platform operations team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Attributes shared by the collection's modules: read-only info modules and acting ones."""

from __future__ import annotations


class ModuleDocFragment:
    # Read-only modules: check mode changes nothing they do.
    INFO = r"""
attributes:
  check_mode:
    description: Runs unchanged in check mode; it never changes anything.
    support: full
  diff_mode:
    description: Nothing changes, so there is no diff.
    support: none
  idempotent:
    description: Reading twice changes nothing.
    support: full
  platform:
    description: Runs on the controller (or any POSIX host with the Python clients).
    support: full
    platforms: posix
"""

    # Modules that change the platform, each change recorded and previewable.
    ACTION = r"""
attributes:
  check_mode:
    description: Reports what it would change, changing nothing.
    support: full
  diff_mode:
    description: Shows the state before and after the change.
    support: full
  platform:
    description: Runs on the controller (or any POSIX host with the Python clients).
    support: full
    platforms: posix
"""
