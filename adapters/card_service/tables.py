"""The social-security-card service's tables (DOMAIN.md, system 3): dates YYYY-MM-DD, JSON text blobs."""

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BindParameter,
    Column,
    ColumnElement,
    Index,
    MetaData,
    String,
    Table,
    Text,
    and_,
    func,
    or_,
)

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

# An e-card registered before its person was enrolled: no social security number yet, filed
# under the permit number it carries (DOMAIN.md: SHBZHM stays empty until enrollment).
NOT_ENROLLED = or_(SBK_DZK.c.SHBZHM.is_(None), func.trim(SBK_DZK.c.SHBZHM) == "")


def electronic_cards_filed_under(owners: Sequence[str] | BindParameter[Any]) -> ColumnElement[bool]:
    """E-cards filed under any of these owner keys (a list, or an expanding parameter): social
    security numbers, or the permit numbers of e-cards not enrolled yet."""
    return or_(SBK_DZK.c.SHBZHM.in_(owners), and_(NOT_ENROLLED, SBK_DZK.c.XKZH.in_(owners)))
