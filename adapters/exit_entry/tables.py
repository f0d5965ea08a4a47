"""The exit-entry administration's tables (DOMAIN.md, system 4): every date is text YYYY/MM/DD."""

from sqlalchemy import Column, Index, MetaData, String, Table

metadata = MetaData()

# Person: YWXM is `Surname, Given Names`; GJ is the Chinese country name.
CRJ_RY = Table(
    "CRJ_RY",
    metadata,
    Column("RYBH", String(12), primary_key=True),
    Column("YWXM", String(80), nullable=False),
    Column("XB", String(1), nullable=False),
    Column("CSRQ", String(10), nullable=False),
    Column("GJ", String(20), nullable=False),
    Column("ZJHM", String(20), nullable=False),
    Index("ix_CRJ_RY_ZJHM", "ZJHM"),
)

CRJ_QZ = Table(
    "CRJ_QZ",
    metadata,
    Column("QZH", String(9), primary_key=True),
    Column("RYBH", String(12), nullable=False),
    Column("QZZL", String(3), nullable=False),
    Column("QFRQ", String(10), nullable=False),
    Column("YXQZ", String(10), nullable=False, default=""),
    Column("TZSBH", String(13), nullable=False, default=""),
    Index("ix_CRJ_QZ_RYBH", "RYBH"),
    Index("ix_CRJ_QZ_TZSBH", "TZSBH"),
)

CRJ_RJ = Table(
    "CRJ_RJ",
    metadata,
    Column("RYBH", String(12), primary_key=True),
    Column("RJRQ", String(10), primary_key=True),
    Column("KA", String(3), primary_key=True),
    Column("QZH", String(9), nullable=False, default=""),
)

CRJ_JLXK = Table(
    "CRJ_JLXK",
    metadata,
    Column("JLXKZH", String(9), primary_key=True),
    Column("RYBH", String(12), nullable=False),
    Column("JLSY", String(2), nullable=False),
    Column("QFRQ", String(10), nullable=False),
    Column("YXQZ", String(10), nullable=False),
    Column("QFJG", String(60), nullable=False, default=""),
    Column("ZT", String(1), nullable=False),
    Column("HYFS", String(3), nullable=False, default=""),
    Index("ix_CRJ_JLXK_RYBH", "RYBH"),
)
