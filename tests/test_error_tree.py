"""``aqi_service/errors.py`` documents the whole exception tree: every exception class the
package defines is named in its docstring, under its real base."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import aqi_service
from aqi_service import errors


def _exception_classes() -> list[type[BaseException]]:
    found = []
    for info in pkgutil.walk_packages(aqi_service.__path__, "aqi_service."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == info.name:
                found.append(obj)
    return found


def test_every_exception_class_is_in_the_tree() -> None:
    doc = errors.__doc__ or ""
    classes = _exception_classes()
    assert len(classes) >= 20
    missing = [f"{c.__module__}.{c.__qualname__}" for c in classes if c.__name__ not in doc]
    assert missing == []


def test_the_tree_shows_each_class_under_its_base() -> None:
    """A class drawn under a parent in the tree is a subclass of it."""
    doc = (errors.__doc__ or "").split("Outside the tree")[0]
    classes = {f"{c.__module__.removeprefix('aqi_service.')}.{c.__name__}": c
               for c in _exception_classes()}
    stack: list[tuple[int, type[BaseException]]] = []
    checked = 0
    for line in doc.splitlines():
        if line.startswith("AqiServiceError"):
            stack = [(-1, errors.AqiServiceError)]
            continue
        marker = line.find("── ")
        if marker < 0:
            continue   # a description's continuation line
        token = line[marker + 3:].split()[0]
        [cls] = [c for key, c in classes.items() if key == token or key.endswith("." + token)]
        while stack[-1][0] >= marker:
            stack.pop()
        assert issubclass(cls, stack[-1][1]), (token, stack[-1][1])
        stack.append((marker, cls))
        checked += 1
    # every class of the tree is drawn in it (the root on its own line)
    assert checked == sum(issubclass(c, errors.AqiServiceError) for c in classes.values()) - 1
