"""The policy engine library is the one we chose, alone in its folder.

`casbin` (1.43, the last release under the old name) and `pycasbin` (the renamed project)
install into the same `casbin/` folder; casbin-sqlalchemy-adapter depends on the old name.
Having both would let an uninstall of one delete the other's files.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import casbin
import casbin_sqlalchemy_adapter


def test_casbin_is_the_pinned_old_name_release() -> None:
    assert metadata.version("casbin") == "1.43.0"
    assert metadata.version("casbin-sqlalchemy-adapter") == "1.4.0"


def test_pycasbin_is_not_installed_next_to_it() -> None:
    names = {(d.metadata["Name"] or "").lower() for d in metadata.distributions()}
    assert "pycasbin" not in names


def test_the_imported_module_belongs_to_that_distribution() -> None:
    files = metadata.files("casbin") or []
    owned = {str(f) for f in files}
    assert "casbin/__init__.py" in owned
    assert Path(casbin.__file__).as_posix().endswith("casbin/__init__.py")
    assert hasattr(casbin, "Enforcer") and hasattr(casbin, "FastEnforcer")
    assert hasattr(casbin_sqlalchemy_adapter, "Adapter")
