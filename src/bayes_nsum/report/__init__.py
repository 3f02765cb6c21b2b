"""The HTML report of a results folder and of a model comparison.

* :mod:`.html` -- :func:`write_report` (reads a results folder only) and
  :func:`comparison_html`;
* :mod:`.page` -- rounding of headline numbers, HTML tables and the page skeleton;
* :mod:`.figures` -- every figure, built without pyplot, axes labelled.
"""

from .html import comparison_html, load_tree, write_report
from .page import headline, percent_headline, significant

__all__ = [
    "write_report",
    "comparison_html",
    "load_tree",
    "headline",
    "percent_headline",
    "significant",
]
