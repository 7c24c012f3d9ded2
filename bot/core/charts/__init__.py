"""Render equity charts (SPC small multiples, dot plot, completeness, gap) as PNG images with alt text for Slack.

One module per chart type; `common` holds what they share. The public names are re-exported here.
"""

from bot.core.charts.common import ALT_TEXT_LIMIT as ALT_TEXT_LIMIT
from bot.core.charts.common import DPI as DPI
from bot.core.charts.common import FIGSIZE as FIGSIZE
from bot.core.charts.common import Chart as Chart
from bot.core.charts.common import _datenum as _datenum
from bot.core.charts.completeness import completeness_chart as completeness_chart
from bot.core.charts.dotplot import _build_latest_window_dotplot as _build_latest_window_dotplot
from bot.core.charts.dotplot import latest_window_dotplot as latest_window_dotplot
from bot.core.charts.gap import _build_gap_chart as _build_gap_chart
from bot.core.charts.gap import gap_chart as gap_chart
from bot.core.charts.timeseries import _build_group_timeseries as _build_group_timeseries
from bot.core.charts.timeseries import group_timeseries as group_timeseries

__all__ = ["Chart", "completeness_chart", "gap_chart", "group_timeseries", "latest_window_dotplot"]
