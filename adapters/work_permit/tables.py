"""The work-permit system's tables, named as the agency names them (DOMAIN.md, system 1)."""

from sqlalchemy import Column, Index, Integer, MetaData, String, Table

metadata = MetaData()

# Applicant. XM is fixed-width upper case `SURNAME GIVEN`; dates are text YYYYMMDD.
WP_SQR = Table(
    "WP_SQR",
    metadata,
    Column("SQRID", Integer, primary_key=True, autoincrement=False),
    Column("XM", String(60), nullable=False),
    Column("XB", String(1), nullable=False),
    Column("CSRQ", String(8), nullable=False),
    Column("GJ", String(3), nullable=False),
    Column("HZHM", String(20), nullable=False),
)

# Passport history, current passport included.
WP_HZLS = Table(
    "WP_HZLS",
    metadata,
    Column("SQRID", Integer, primary_key=True, autoincrement=False),
    Column("HZHM", String(20), primary_key=True),
    Column("QSRQ", String(8), nullable=False, default=""),
    Column("ZZRQ", String(8), nullable=False, default=""),
    Index("ix_WP_HZLS_HZHM", "HZHM"),
)

# One row per permit period; XKZH is shared by successive periods ("one person, one number").
WP_XKZ = Table(
    "WP_XKZ",
    metadata,
    Column("XKID", Integer, primary_key=True, autoincrement=False),
    Column("XKZH", String(18), nullable=False),
    Column("SQRID", Integer, nullable=False),
    Column("RCLB", String(1), nullable=False),
    Column("ZT", String(2), nullable=False),
    Column("YXQQ", String(8), nullable=False, default=""),
    Column("YXQZ", String(8), nullable=False, default=""),
    Column("DWMC", String(100), nullable=False),
    Column("TYSHXYDM", String(18), nullable=False),
    Column("GZDD", String(6), nullable=False),
    Column("ZW", String(60), nullable=False),
    Column("STZ", String(1), nullable=False),
    Column("TZSBH", String(13), nullable=False, default=""),
    Column("TZRQ", String(8), nullable=False, default=""),
    Index("ix_WP_XKZ_XKZH", "XKZH"),
    Index("ix_WP_XKZ_SQRID", "SQRID"),
    Index("ix_WP_XKZ_TYSHXYDM", "TYSHXYDM", "XKID"),
    Index("ix_WP_XKZ_TZSBH", "TZSBH"),
)

# Business records of every permit step.
WP_YWJL = Table(
    "WP_YWJL",
    metadata,
    Column("XKID", Integer, nullable=False),
    Column("YWLX", String(2), nullable=False),
    Column("SQRQ", String(8), nullable=False),
    Column("BJRQ", String(8), nullable=False, default=""),
    Column("JG", String(1), nullable=False),
    Column("BZ", String(200), nullable=False, default=""),
    Index("ix_WP_YWJL_XKID", "XKID"),
)
