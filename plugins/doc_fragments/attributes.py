# Copyright: Isobar contributors
# Apache-2.0
"""What the check_mode and diff_mode attributes mean, for every module (as community.general's
``attributes`` fragment). How far a module supports them is said in the module's own DOCUMENTATION:

    extends_documentation_fragment: [attributes]
    attributes:
      check_mode:
        support: full
      diff_mode:
        support: full
"""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check mode and return the changed status it predicts without changing anything.
  diff_mode:
    description: Returns details on what has changed (or would change, in check mode) in diff mode.
"""
