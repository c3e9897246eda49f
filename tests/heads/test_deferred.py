"""A module deferred while others import it (bottleneck.heads.deferred): nothing of it runs
until it is used, then it is the real module, imported once, for everyone. Tested on a small
package written here, whose every import is logged."""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from bottleneck.heads import sklearn_import
from bottleneck.heads.deferred import DeferredModule, Forwarded, deferred_module

FILES = {
    "fakepkg_log.py": "loads = []\n",
    "fakepkg/__init__.py": (
        "import fakepkg_log\n"
        "fakepkg_log.loads.append(__name__)\n"
        "def double(x):\n    return 2 * x\n"
        "class Scale:\n    factor = 3\n    def __call__(self, x):\n        return 3 * x\n"
        "SCALE = Scale()\n"),
    "fakepkg/sub.py": "import fakepkg_log\nfakepkg_log.loads.append(__name__)\nVALUE = 7\n",
    "user_from.py": "from fakepkg import SCALE, double\n",
    "user_module.py": "import fakepkg\ndef use():\n    return fakepkg.double(2)\n",
    "user_sub.py": "from fakepkg.sub import VALUE\n",
}


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The package on sys.path; yields its log of imports; forgets it all afterwards."""
    for name, text in FILES.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    import fakepkg_log

    yield fakepkg_log.loads
    for name in [n for n in sys.modules if n.startswith(("fakepkg", "user_"))]:
        del sys.modules[name]


def test_nothing_runs_until_first_use_then_the_real_module_serves_everyone(fake) -> None:
    with deferred_module("fakepkg", ("double", "SCALE")) as stand_in:
        import user_from
        import user_module
    assert isinstance(stand_in, DeferredModule) and fake == []
    assert "fakepkg" not in sys.modules  # unused: as if never imported
    assert isinstance(user_from.double, Forwarded) and user_module.fakepkg is stand_in

    assert user_from.double(21) == 42 and fake == ["fakepkg"]
    real = sys.modules["fakepkg"]
    assert type(real) is types.ModuleType and real is not stand_in
    assert user_module.use() == 4 and user_from.SCALE(2) == 6
    assert user_from.SCALE.factor == 3 and stand_in.Scale is real.Scale
    import fakepkg
    import fakepkg.sub

    assert fakepkg is real and fakepkg.sub.VALUE == 7
    assert fake == ["fakepkg", "fakepkg.sub"]  # each imported once
    assert "double" in dir(stand_in)


def test_any_other_name_imports_the_real_module_at_once(fake) -> None:
    with deferred_module("fakepkg", ("double",)) as stand_in:
        import user_module

        assert fake == []
        assert stand_in.Scale.factor == 3 and fake == ["fakepkg"]
        import user_from  # after the import: the real names, no stand-ins
    assert user_module.fakepkg is stand_in and user_module.use() == 4
    assert user_from.double is sys.modules["fakepkg"].double
    assert fake == ["fakepkg"]


def test_a_module_imported_already_is_left_as_it_is(fake) -> None:
    import fakepkg

    with deferred_module("fakepkg", ("double",)) as stand_in:
        import user_from
    assert stand_in is None and sys.modules["fakepkg"] is fakepkg
    assert user_from.double is fakepkg.double and fake == ["fakepkg"]


def test_a_submodule_cannot_be_imported_while_deferred_and_then_nothing_is(
    fake, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ModuleNotFoundError, match="not a package"), deferred_module("fakepkg"):
        import user_sub  # noqa: F401
    assert "fakepkg" not in sys.modules and "user_sub" not in sys.modules

    monkeypatch.setattr(sklearn_import, "DEFERRED", {"fakepkg": ("double",)})
    sklearn_import.deferring_scipy(["user_from", "user_sub"])  # imports them without deferring
    import user_from
    import user_sub

    assert user_sub.VALUE == 7 and user_from.double(1) == 2
    assert fake == ["fakepkg", "fakepkg.sub"]
