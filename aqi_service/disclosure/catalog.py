"""The disclosure catalogue (categories and sub-items) as data, from a TOML file.

The structure lives in ``config/disclosure_catalog.toml``; :func:`load_catalog` validates it
(every problem reported at once) and the storage layer syncs it to the database.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aqi_service.errors import ConfigError

ENTERPRISE_RULES = ("required", "optional", "none")
_CATEGORY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_SUBITEM = re.compile(r"^[a-z][a-z0-9_]{0,39}\.[a-z][a-z0-9_]{0,39}$")
_BASIS = re.compile(r"^[a-z0-9-]+(:[a-z0-9.]+)?$")
_CATEGORY_KEYS = {"code", "name_zh", "name_en", "description_zh", "description_en",
                  "subitems"}
_SUBITEM_KEYS = {"code", "name_zh", "name_en", "description_zh", "description_en",
                 "enterprise", "basis"}


@dataclass(frozen=True, slots=True)
class Subitem:
    """One sub-item of a category."""

    code: str
    category_code: str
    name_zh: str
    name_en: str
    position: int
    enterprise: str = "optional"
    basis: tuple[str, ...] = ()
    description_zh: str = ""
    description_en: str = ""


@dataclass(frozen=True, slots=True)
class Category:
    """One category and its sub-items, in order."""

    code: str
    name_zh: str
    name_en: str
    position: int
    subitems: tuple[Subitem, ...]
    description_zh: str = ""
    description_en: str = ""


@dataclass(frozen=True, slots=True)
class Catalog:
    """The whole catalogue."""

    version: int
    categories: tuple[Category, ...]

    @property
    def subitems(self) -> tuple[Subitem, ...]:
        """Every sub-item, in catalogue order."""
        return tuple(s for c in self.categories for s in c.subitems)

    def subitem(self, code: str) -> Subitem:
        """The sub-item with ``code`` (KeyError if unknown)."""
        for s in self.subitems:
            if s.code == code:
                return s
        raise KeyError(code)

    def category(self, code: str) -> Category:
        """The category with ``code`` (KeyError if unknown)."""
        for c in self.categories:
            if c.code == code:
                return c
        raise KeyError(code)


def _text(raw: Mapping[str, Any], key: str, where: str, errors: list[str],
          required: bool = True) -> str:
    value = raw.get(key, "")
    if not isinstance(value, str):
        errors.append(f"{where}.{key}: must be a string")
        return ""
    if required and not value.strip():
        errors.append(f"{where}.{key}: required")
    return value.strip()


def parse_catalog(doc: Mapping[str, Any]) -> Catalog:
    """Validate a parsed TOML document; raise ConfigError listing every problem."""
    errors: list[str] = []
    version = doc.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool):
        errors.append("version: must be an integer")
        version = 1
    raw_categories = doc.get("categories")
    if not isinstance(raw_categories, list) or not raw_categories:
        raise ConfigError("disclosure catalogue: needs [[categories]]")
    seen: set[str] = set()
    categories = []
    for i, raw in enumerate(raw_categories):
        where = f"categories[{i}]"
        if not isinstance(raw, Mapping):
            errors.append(f"{where}: must be a table")
            continue
        for key in sorted(set(raw) - _CATEGORY_KEYS):
            errors.append(f"{where}.{key}: unknown key")
        code = _text(raw, "code", where, errors)
        if code and not _CATEGORY.match(code):
            errors.append(f"{where}.code: {code!r} must be lower-case ASCII (a-z, 0-9, _)")
        if code in seen:
            errors.append(f"{where}.code: {code!r} is used twice")
        seen.add(code)
        subitems = []
        raw_subs = raw.get("subitems")
        if not isinstance(raw_subs, list) or not raw_subs:
            errors.append(f"{where}: needs at least one [[categories.subitems]]")
            raw_subs = []
        for j, sub in enumerate(raw_subs):
            swhere = f"{where}.subitems[{j}]"
            if not isinstance(sub, Mapping):
                errors.append(f"{swhere}: must be a table")
                continue
            for key in sorted(set(sub) - _SUBITEM_KEYS):
                errors.append(f"{swhere}.{key}: unknown key")
            scode = _text(sub, "code", swhere, errors)
            if scode and (not _SUBITEM.match(scode) or scode.split(".")[0] != code):
                errors.append(f"{swhere}.code: {scode!r} must be '{code}.<name>' "
                              "(lower-case ASCII)")
            if scode in seen:
                errors.append(f"{swhere}.code: {scode!r} is used twice")
            seen.add(scode)
            rule = sub.get("enterprise", "optional")
            if rule not in ENTERPRISE_RULES:
                errors.append(f"{swhere}.enterprise: {rule!r} is not one of "
                              f"{', '.join(ENTERPRISE_RULES)}")
            basis = sub.get("basis", [])
            if not isinstance(basis, list) or not all(
                    isinstance(b, str) and _BASIS.match(b) for b in basis):
                errors.append(f"{swhere}.basis: must be a list of tags like 'city-2014' or "
                              "'measures-2021:12.3'")
                basis = []
            subitems.append(Subitem(
                code=scode, category_code=code, position=j + 1,
                name_zh=_text(sub, "name_zh", swhere, errors),
                name_en=_text(sub, "name_en", swhere, errors),
                description_zh=_text(sub, "description_zh", swhere, errors, False),
                description_en=_text(sub, "description_en", swhere, errors, False),
                enterprise=str(rule), basis=tuple(basis)))
        categories.append(Category(
            code=code, position=i + 1, subitems=tuple(subitems),
            name_zh=_text(raw, "name_zh", where, errors),
            name_en=_text(raw, "name_en", where, errors),
            description_zh=_text(raw, "description_zh", where, errors, False),
            description_en=_text(raw, "description_en", where, errors, False)))
    if errors:
        raise ConfigError("invalid disclosure catalogue:\n  " + "\n  ".join(errors))
    return Catalog(version=version, categories=tuple(categories))


def load_catalog(path: Path) -> Catalog:
    """Read and validate the catalogue file."""
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: disclosure catalogue not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    try:
        return parse_catalog(doc)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
