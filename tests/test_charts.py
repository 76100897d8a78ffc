"""The digest chart is a readable PNG for real data, for gaps, and for no data at all, and it
is drawn without pyplot's global state."""

from __future__ import annotations

import io
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from analytics.charts import digest_chart

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DAYS = [date(2024, 3, 1) + timedelta(days=i) for i in range(14)]


def chart(**overrides) -> bytes:
    arguments = {
        "title": "Weekly digest · Test Shop",
        "days": DAYS,
        "csat": [70.0 + i for i in range(14)],
        "nps": [None if i % 3 == 0 else 10.0 - 2 * i for i in range(14)],
        "sentiment": [0.1 * ((i % 5) - 2) for i in range(14)],
        "segment_counts": {"Champions": 120, "At Risk": 55, "Lost": 900, "Unclassified": 4},
    }
    arguments.update(overrides)
    return digest_chart(**arguments)


def pixels(png: bytes) -> np.ndarray:
    return imread(io.BytesIO(png), format="png")


def test_a_chart_with_data_is_a_png_of_a_reasonable_size():
    png = chart()
    assert png.startswith(PNG_SIGNATURE)
    assert 20_000 < len(png) < 1_000_000
    image = pixels(png)
    assert image.shape[:2] == (900, 800)
    assert image[..., :3].std() > 0.05  # lines, bars and text, not a blank canvas


def test_empty_inputs_still_render_a_no_data_chart():
    empty = digest_chart(
        title="Daily digest", days=[], csat=[], nps=[], sentiment=[], segment_counts=None
    )
    assert empty.startswith(PNG_SIGNATURE)
    image = pixels(empty)
    assert image.shape[:2] == (900, 800)
    assert image[..., :3].min() < 0.5  # title, frames and "no data yet" are drawn
    assert len(empty) < len(chart())


def test_missing_values_and_a_single_day_are_drawn():
    gaps = chart(csat=[None] * 14, nps=[None] * 13 + [40.0], sentiment=[None] * 14)
    assert gaps.startswith(PNG_SIGNATURE)
    one_day = chart(days=DAYS[:1], csat=[80.0], nps=[None], sentiment=[0.3], segment_counts={})
    assert one_day.startswith(PNG_SIGNATURE)
    assert pixels(gaps).shape == pixels(one_day).shape


def test_series_must_have_one_value_per_day():
    with pytest.raises(ValueError, match="csat"):
        chart(csat=[50.0])


def test_charts_can_be_drawn_from_several_threads_at_once():
    with ThreadPoolExecutor(max_workers=4) as pool:
        images = list(pool.map(lambda _: chart(), range(4)))
    assert all(png.startswith(PNG_SIGNATURE) for png in images)
    assert len({len(png) for png in images}) == 1  # the same drawing every time


def test_drawing_does_not_import_pyplot():
    code = (
        "import sys; from datetime import date; from analytics.charts import digest_chart; "
        "digest_chart(title='t', days=[date(2024, 1, 1)], csat=[1.0], nps=[2.0], "
        "sentiment=[0.1], segment_counts={'Lost': 3}); "
        "print('matplotlib.pyplot' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
