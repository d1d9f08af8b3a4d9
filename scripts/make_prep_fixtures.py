#!/usr/bin/python3
"""Expected values for tests/test_prep_online_retail.cpp, computed with pandas independently of
segforge-prep, from the UCI Online Retail sample in ../shared/datasets/online_retail/.

Run with Debian's Python (python3-pandas), not a virtual environment's:
    /usr/bin/python3 scripts/make_prep_fixtures.py
Writes tests/fixtures/prep/online_retail_expected.csv (one row per customer with a gift),
tests/fixtures/prep/online_retail_counts.csv (the cleaning counts, key,value) and
tests/fixtures/prep/online_retail_excluded.csv (the customers without a gift, as
`segforge-prep rfm --excluded` lists them: id,reason,transactions,net_amount).

The rules are those of include/segforge/prep/rfm.hpp, written out again here:
  1. every field read as text; exact duplicate rows dropped (first kept);
  2. rows with an empty CustomerID dropped;
  3. InvoiceDate read as %m/%d/%Y %H:%M, times dropped (whole days);
  4. amount = Quantity x UnitPrice; rows grouped into transactions by (CustomerID, InvoiceNo),
     date = earliest row, net = sum of the rows; |net| <= 1e-9 max(1, sum |rows|) is zero;
  5. as-of = the day after the last row kept; a gift is a transaction with net > 0;
  6. per customer: recency = as_of - last gift, frequency = gifts, monetary_total = sum of all
     nets, monetary_mean = total / gifts, largest_gift, tenure = as_of - first gift,
     gifts_12m / amount_12m over ages 1..365 days, trend over ages 366..730;
     customers without a gift are left out, listed with a reason: refunds_only (every
     transaction a refund), zero_net_only (every transaction nets to 0), refunds_and_zero_net.
"""

import os
import sys

import numpy as np
import pandas as pd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "prep")


def datasets_dir():
    for candidate in (os.environ.get("SEGFORGE_DATASETS"),
                      os.path.join(ROOT, "..", "shared", "datasets"),
                      "/work/shared/datasets"):
        if candidate and os.path.isdir(candidate):
            return candidate
    sys.exit("make_prep_fixtures.py: no datasets folder; set SEGFORGE_DATASETS")


def online_retail(path):
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    counts = {"gifts_rows_read": len(raw)}

    duplicate = raw.duplicated(keep="first")
    counts["gifts_duplicate_rows"] = int(duplicate.sum())
    df = raw[~duplicate].copy()

    df["CustomerID"] = df["CustomerID"].str.strip()
    missing = df["CustomerID"] == ""
    counts["gifts_missing_id_rows"] = int(missing.sum())
    df = df[~missing].copy()

    df["amount"] = df["Quantity"].astype(float) * df["UnitPrice"].astype(float)
    df["day"] = pd.to_datetime(df["InvoiceDate"], format="%m/%d/%Y %H:%M").dt.normalize()
    counts["gifts_unparseable_date_rows"] = 0
    counts["gifts_rows_used"] = len(df)
    counts["negative_rows"] = int((df["amount"] < 0).sum())
    as_of = df["day"].max() + pd.Timedelta(days=1)
    counts["history_days"] = int((as_of - df["day"].min()).days)

    df["gross"] = df["amount"].abs()
    tx = (df.groupby(["CustomerID", "InvoiceNo"], sort=False)
            .agg(day=("day", "min"), net=("amount", "sum"), gross=("gross", "sum"))
            .reset_index())
    zero = tx["net"].abs() <= 1e-9 * np.maximum(1.0, tx["gross"])
    tx["gift"] = (~zero) & (tx["net"] > 0)
    tx["refund"] = (~zero) & (tx["net"] < 0)
    tx["age"] = (as_of - tx["day"]).dt.days
    counts["transactions"] = len(tx)
    counts["gift_transactions"] = int(tx["gift"].sum())
    counts["refund_transactions"] = int(tx["refund"].sum())
    counts["zero_transactions"] = int(zero.sum())

    recent = tx["age"] <= 365
    before = (tx["age"] > 365) & (tx["age"] <= 730)
    gifts = tx[tx["gift"]]
    per = pd.DataFrame({
        "frequency_gifts": gifts.groupby("CustomerID").size(),
        "last": gifts.groupby("CustomerID")["day"].max(),
        "first": gifts.groupby("CustomerID")["day"].min(),
        "largest_gift": gifts.groupby("CustomerID")["net"].max(),
        "gifts_12m": gifts[gifts["age"] <= 365].groupby("CustomerID").size(),
    })
    per["monetary_total"] = tx.groupby("CustomerID")["net"].sum()
    per["amount_12m"] = tx[recent].groupby("CustomerID")["net"].sum()
    per["amount_prev_12m"] = tx[before].groupby("CustomerID")["net"].sum()
    counts["donors_seen"] = int(tx["CustomerID"].nunique())
    no_gift = tx.loc[~tx["CustomerID"].isin(per.index[per["frequency_gifts"].notna()]), "CustomerID"]
    left = tx[tx["CustomerID"].isin(no_gift)].groupby("CustomerID").agg(
        refunds=("refund", "sum"), transactions=("net", "size"), net_amount=("net", "sum"))
    left["reason"] = np.where(left["refunds"] == left["transactions"], "refunds_only",
                              np.where(left["refunds"] == 0, "zero_net_only", "refunds_and_zero_net"))
    left.index = left.index.astype(np.int64)
    left = left.sort_index()
    with open(os.path.join(OUT, "online_retail_excluded.csv"), "w") as f:
        f.write("id,reason,transactions,net_amount\n")
        for cid, row in left.iterrows():
            f.write(f"{cid},{row['reason']},{int(row['transactions'])},{float(row['net_amount'])!r}\n")
    per = per[per["frequency_gifts"].notna()].copy()
    counts["donors_without_gifts"] = counts["donors_seen"] - len(per)
    counts["n_samples"] = len(per)
    per = per.fillna({"gifts_12m": 0, "amount_12m": 0.0, "amount_prev_12m": 0.0})

    per["recency_days"] = (as_of - per["last"]).dt.days
    per["tenure_days"] = (as_of - per["first"]).dt.days
    per["monetary_mean"] = per["monetary_total"] / per["frequency_gifts"]
    a, b = per["amount_12m"], per["amount_prev_12m"]
    denominator = a.abs() + b.abs()
    per["trend_12m_ratio"] = np.where(denominator > 0, (a - b) / denominator.where(denominator > 0, 1.0), 0.0)

    per.index = per.index.astype(np.int64)
    per = per.sort_index()
    columns = ["recency_days", "frequency_gifts", "monetary_total", "monetary_mean", "largest_gift",
               "tenure_days", "gifts_12m", "amount_12m", "trend_12m_ratio"]
    out = per[columns].copy()
    for c in ("recency_days", "frequency_gifts", "tenure_days", "gifts_12m"):
        out[c] = out[c].astype(np.int64)
    out.index.name = "CustomerID"
    out.to_csv(os.path.join(OUT, "online_retail_expected.csv"), float_format="%.12g")

    counts["as_of"] = as_of.strftime("%Y-%m-%d")
    with open(os.path.join(OUT, "online_retail_counts.csv"), "w") as f:
        f.write("key,value\n")
        for key, value in counts.items():
            f.write(f"{key},{value}\n")
    print(f"online retail: {len(out)} customers, as-of {counts['as_of']}", file=sys.stderr)


def main():
    os.makedirs(OUT, exist_ok=True)
    online_retail(os.path.join(datasets_dir(), "online_retail", "online_retail_sample_40000.csv"))


if __name__ == "__main__":
    main()
