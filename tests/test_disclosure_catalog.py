"""The disclosure catalogue: the shipped file covers the city's list and the 2021 measures;
the structure is data (validated, synced to the database without code)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import asyncpg
import pytest

from aqi_service.disclosure.catalog import load_catalog, parse_catalog
from aqi_service.errors import ConfigError
from aqi_service.storage import disclosure as store

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "config" / "disclosure_catalog.toml"


def test_the_shipped_catalogue_has_8_categories_and_30_subitems() -> None:
    # langfang.md: "已公开污染源环境信息8大类30小项"
    catalog = load_catalog(SHIPPED)
    assert len(catalog.categories) == 8
    assert len(catalog.subitems) == 30
    assert len({s.code for s in catalog.subitems}) == 30


def test_every_kind_the_city_named_has_a_subitem() -> None:
    names = " ".join(s.name_zh for s in load_catalog(SHIPPED).subitems)
    # the 2014 report's list, in its words
    for kind in ("在线监控实时数据", "国控重点企业", "省控重点企业", "企业基本信息",
                 "监测结果", "危险废物管理", "挂牌督办", "行政处罚", "固体废物行政审批结果",
                 "环境监察执法", "突发环境事件"):
        assert kind in names, kind


def test_every_item_of_article_12_of_the_2021_measures_is_covered() -> None:
    basis = {b for s in load_catalog(SHIPPED).subitems for b in s.basis}
    for item in range(1, 9):
        assert f"measures-2021:12.{item}" in basis
    assert "measures-2021:temporary" in basis


def _doc() -> dict:
    return tomllib.loads(SHIPPED.read_text(encoding="utf-8"))


def test_problems_are_all_reported_with_their_place() -> None:
    doc = _doc()
    doc["categories"][0]["code"] = "Online Monitoring"
    doc["categories"][1]["subitems"][0]["code"] = doc["categories"][1]["subitems"][1]["code"]
    doc["categories"][2]["subitems"][0]["enterprise"] = "sometimes"
    doc["categories"][3]["subitems"][0]["name_zh"] = " "
    doc["categories"][4]["colour"] = "red"
    with pytest.raises(ConfigError) as err:
        parse_catalog(doc)
    text = str(err.value)
    assert "categories[0].code: 'Online Monitoring' must be lower-case" in text
    assert "categories[1].subitems[1].code" in text and "used twice" in text
    assert "categories[2].subitems[0].enterprise: 'sometimes'" in text
    assert "categories[3].subitems[0].name_zh: required" in text
    assert "categories[4].colour: unknown key" in text


def test_a_subitem_must_belong_to_its_category_by_code() -> None:
    doc = _doc()
    doc["categories"][0]["subitems"][0]["code"] = "waste.realtime"
    with pytest.raises(ConfigError, match=r"must be 'online_monitoring\.<name>'"):
        parse_catalog(doc)


@pytest.mark.db
async def test_sync_adds_renames_and_deactivates_without_code(pool: asyncpg.Pool,
                                                              tmp_path: Path) -> None:
    async with pool.acquire() as conn:
        await store.sync_catalog(conn, load_catalog(SHIPPED))
        rows = await store.catalog_rows(conn)
        assert len(rows) == 30
        assert len({r["category_code"] for r in rows}) == 8
        assert await store.sync_catalog(conn, load_catalog(SHIPPED)) == 0  # idempotent

        text = SHIPPED.read_text(encoding="utf-8")
        text = text.replace('name_zh = "挂牌督办"', 'name_zh = "挂牌督办（限期整改）"')
        text = text.replace('''  [[categories.subitems]]
  code = "emergency.incidents"''', '''  [[categories.subitems]]
  code = "emergency.drills"
  name_zh = "应急演练"
  name_en = "Emergency drills"

  [[categories.subitems]]
  code = "emergency.incidents_v2"''')
        edited = tmp_path / "catalog.toml"
        edited.write_text(text, encoding="utf-8")
        await store.sync_catalog(conn, load_catalog(edited))
        rows = {r["subitem_code"]: r for r in await store.catalog_rows(conn)}
        assert rows["enforcement.supervised_rectification"]["subitem_name_zh"] == \
            "挂牌督办（限期整改）"
        assert "emergency.drills" in rows and "emergency.incidents" not in rows
        # the removed sub-item stays in the table (records may point to it), inactive
        assert await conn.fetchval("SELECT active FROM disclosure_subitems "
                                   "WHERE code = 'emergency.incidents'") is False
