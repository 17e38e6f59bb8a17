"""Generates accounts.csv and what pandas computes on it (expected.json),
for the DataFrame test `results_equal_pandas` (tests/tests/dataframe.rs).

Run from this directory with pandas installed: python3 make_expected.py
Both outputs are checked in, so the tests do not need Python.
"""
import json
import random

import pandas as pd

rng = random.Random(42)
rows = 3000
pd.DataFrame({
    "id": range(rows),
    "name": [None if rng.random() < 0.05 else f"n{rng.randrange(40)}" for _ in range(rows)],
    "balance": [rng.randrange(-1000, 1000) for _ in range(rows)],
    "score": [None if rng.random() < 0.1 else round(rng.uniform(0, 100), 3) for _ in range(rows)],
    "small": [rng.randrange(0, 5) for _ in range(rows)],
}).to_csv("accounts.csv", index=False)

df = pd.read_csv("accounts.csv")
filters = {
    "balance_lt_0": df.balance < 0,
    "negative_n7": (df.balance < 0) & (df.name == "n7"),
    "score_missing_or_high": df.score.isna() | (df.score > 50.5),
    "not_small_ge_2_and_score_le_balance": ~(df.small >= 2) & (df.score <= df.balance),
}
total = df.balance * 2 + df.small
ratio = df.balance / (df.small + 1)
numeric = ["id", "balance", "score", "small"]
expected = {
    "filters": {k: df.id[m].tolist() for k, m in filters.items()},
    "total_sum": int(total.sum()),
    "total_head": total.head(20).tolist(),
    "ratio_sum": float(ratio.sum()),
    "count": {k: int(v) for k, v in df.count().items()},
    "sum": {k: float(df[k].sum()) for k in numeric},
    "mean": {k: float(df[k].mean()) for k in numeric},
    "min": {k: float(df[k].min()) for k in numeric},
    "max": {k: float(df[k].max()) for k in numeric},
    "len_negative": int((df.balance < 0).sum()),
}
with open("expected.json", "w") as f:
    json.dump(expected, f, separators=(",", ":"))
    f.write("\n")
