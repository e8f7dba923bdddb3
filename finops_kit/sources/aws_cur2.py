"""AWS CUR 2.0 (Data Exports, ``COST_AND_USAGE_REPORT`` table) -> FOCUS 1.2.

CUR 2.0 has a fixed snake_case schema: the legacy columns that vary month to month are folded into MAP columns
(``product``, ``resource_tags``, ``cost_category``, ``discount``). The mapping is the legacy CUR one
(:mod:`.aws_cur`): a legacy name such as ``product/ProductName`` resolves to the static column
``product_product_name`` when the export has it, else to ``product['product_name']``. MAP columns are read as
parquet MAPs or, in CSV exports, as JSON text.

Discounts: the ``discount`` MAP (and ``discount_total_discount``) describe discounts already present as their own
line items (``EdpDiscount``, ``PrivateRateDiscount``, ...) whose unblended cost is part of the bill; with "manual
discount compatibility" only the line items exist. BilledCost therefore sums ``line_item_unblended_cost`` over all
rows and never adds the MAP, which is kept verbatim as ``x_Discounts`` JSON for reference: one or the other is
counted, never both. Everything else (amortization, split fee rows, split cost allocation rows, tags) is described
in :mod:`.aws_cur`.
"""

from __future__ import annotations

from collections.abc import Sequence

from .aws_cur import CurSourceBase, _is_snake_cur
from .base import register

#: MAP columns that only CUR 2.0 has (a legacy CUR for Athena has one column per tag instead).
CUR2_MAPS = ("product", "resource_tags", "cost_category", "discount")


@register
class AwsCur2Source(CurSourceBase):
    name = "aws-cur2"
    description = "AWS CUR 2.0 / Data Exports (snake_case with MAP columns product, resource_tags, ...; parquet or CSV)"
    signature = ("line_item_unblended_cost", "product")
    key_family = "aws"  # see AwsCurSource.key_family

    @classmethod
    def detect(cls, columns: Sequence[str], path: str) -> bool:
        return _is_snake_cur(columns) and any(m in set(columns) for m in CUR2_MAPS)

    def flavour(self, columns: Sequence[str]) -> str:
        return "cur2"
