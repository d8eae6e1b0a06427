"""CSV writing of run files: exact round trip, pandas' plain header, quotes only where a value needs them."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from actionbank_env.core.io import write_frame_csv


def _written(frame: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    write_frame_csv(buf, frame)
    return buf.getvalue()


def test_floats_read_back_exactly_and_the_text_is_plain() -> None:
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.random(500), rng.random(500) * 1e-9, rng.random(500) * 1e12, [np.nan, 0.1, -0.0]])
    frame = pd.DataFrame({"user_id": np.arange(values.size), "action_id": "A1", "p": values, "click": 1})
    text = _written(frame)
    back = pd.read_csv(io.BytesIO(text), dtype={"action_id": str})
    np.testing.assert_array_equal(back["p"].to_numpy(), values)  # bit-exact, NaN included
    pd.testing.assert_frame_equal(back, frame, check_exact=True)
    lines = text.decode().splitlines()
    assert lines[0] == "user_id,action_id,p,click" and lines[1].startswith("0,A1,")  # no quotes where none are needed
    assert text.decode().splitlines()[-2].split(",")[2] == "0.1"  # the shortest text that reads back exactly


def test_values_that_need_quotes_get_them_and_mixed_columns_fall_back_to_pandas() -> None:
    frame = pd.DataFrame({"text": ["plain", 'a, "quoted" one'], "n": [1, 2]})
    text = _written(frame).decode()
    assert '"a, ""quoted"" one"' in text
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(text)), frame)
    mixed = pd.DataFrame({"cell": [1, "two"], "x": [0.5, 0.25]})  # pyarrow cannot type this column
    assert pd.read_csv(io.BytesIO(_written(mixed)))["x"].tolist() == [0.5, 0.25]
