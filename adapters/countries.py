"""Countries in the three spellings the agencies use: ISO alpha-3 (the graph and the
work-permit system), ISO numeric with leading zeros (social insurance) and the Chinese
short name (exit-entry)."""

from __future__ import annotations

# alpha-3, numeric, Chinese name
_COUNTRIES: tuple[tuple[str, str, str], ...] = (
    ("AUS", "036", "澳大利亚"),
    ("AUT", "040", "奥地利"),
    ("BEL", "056", "比利时"),
    ("BRA", "076", "巴西"),
    ("CAN", "124", "加拿大"),
    ("CHE", "756", "瑞士"),
    ("CZE", "203", "捷克"),
    ("DEU", "276", "德国"),
    ("DNK", "208", "丹麦"),
    ("EGY", "818", "埃及"),
    ("ESP", "724", "西班牙"),
    ("FIN", "246", "芬兰"),
    ("FRA", "250", "法国"),
    ("GBR", "826", "英国"),
    ("GRC", "300", "希腊"),
    ("HUN", "348", "匈牙利"),
    ("IDN", "360", "印度尼西亚"),
    ("IND", "356", "印度"),
    ("IRL", "372", "爱尔兰"),
    ("ISL", "352", "冰岛"),
    ("ITA", "380", "意大利"),
    ("JPN", "392", "日本"),
    ("KAZ", "398", "哈萨克斯坦"),
    ("KEN", "404", "肯尼亚"),
    ("KOR", "410", "韩国"),
    ("MEX", "484", "墨西哥"),
    ("MNG", "496", "蒙古"),
    ("MYS", "458", "马来西亚"),
    ("NGA", "566", "尼日利亚"),
    ("NLD", "528", "荷兰"),
    ("NOR", "578", "挪威"),
    ("NZL", "554", "新西兰"),
    ("PAK", "586", "巴基斯坦"),
    ("PHL", "608", "菲律宾"),
    ("POL", "616", "波兰"),
    ("PRT", "620", "葡萄牙"),
    ("RUS", "643", "俄罗斯"),
    ("SGP", "702", "新加坡"),
    ("SWE", "752", "瑞典"),
    ("THA", "764", "泰国"),
    ("TUR", "792", "土耳其"),
    ("UKR", "804", "乌克兰"),
    ("USA", "840", "美国"),
    ("VNM", "704", "越南"),
    ("ZAF", "710", "南非"),
)

ALPHA3 = frozenset(a for a, _, _ in _COUNTRIES)
ALPHA3_BY_NUMERIC = {n: a for a, n, _ in _COUNTRIES}
NUMERIC_BY_ALPHA3 = {a: n for a, n, _ in _COUNTRIES}
ALPHA3_BY_CHINESE = {c: a for a, _, c in _COUNTRIES}
CHINESE_BY_ALPHA3 = {a: c for a, _, c in _COUNTRIES}
