"""The social-security-card service's tables (DOMAIN.md, system 3): dates YYYY-MM-DD, JSON text blobs."""

from sqlalchemy import Column, Index, MetaData, String, Table, Text

metadata = MetaData()

# Physical card; GZXKXX is the work-permit information loaded onto it, as JSON text or empty.
SBK_KXX = Table(
    "SBK_KXX",
    metadata,
    Column("KH", String(9), primary_key=True),
    Column("SHBZHM", String(18), nullable=False),
    Column("XM", String(60), nullable=False),
    Column("KZT", String(1), nullable=False),
    Column("FKRQ", String(10), nullable=False, default=""),
    Column("YXQ", String(10), nullable=False, default=""),
    Column("GZXKXX", Text, nullable=False, default=""),
    Index("ix_SBK_KXX_SHBZHM", "SHBZHM"),
)

# Electronic card.
SBK_DZK = Table(
    "SBK_DZK",
    metadata,
    Column("DZKID", String(12), primary_key=True),
    Column("KH", String(9), nullable=False, default=""),
    Column("SHBZHM", String(18), nullable=False),
    Column("XKZH", String(18), nullable=False),
    Column("QFZT", String(1), nullable=False),
    Column("QFSJ", String(25), nullable=False, default=""),
    Column("RZFS", String(7), nullable=False),
    Column("RZBH", String(40), nullable=False),
    Index("ix_SBK_DZK_SHBZHM", "SHBZHM"),
    Index("ix_SBK_DZK_XKZH", "XKZH"),
)
