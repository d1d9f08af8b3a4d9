#!/usr/bin/python3
"""Expected values for tests/test_prep_table_roles.cpp, computed with pandas independently of
segforge-prep, from the Customer Personality table in ../shared/datasets/customer_personality/.

Run with Debian's Python (python3-pandas):
    /usr/bin/python3 scripts/make_table_fixtures.py
Writes tests/fixtures/prep/customer_personality_expected.csv: per customer ID, the features
`segforge-prep table marketing_campaign.csv --missing median --min-level-share 0.01
--as-of 2014-07-01` makes before scaling, by these rules (docs/prep.md):
  Income: empty cells filled with the median of the others (pandas' median);
  Dt_Customer (%d-%m-%Y): days from the date to as-of 2014-07-01;
  Education, Marital_Status: one-hot (pandas.get_dummies), levels rarer than 1% of rows
  pooled into <column>_other; column names snake_case;
and tests/fixtures/prep/customer_personality_fill.csv (key,value: the median used).
Also tests/fixtures/prep/wholesale_skew.csv (column,skewness): scipy.stats.skew (bias=True,
the Fisher-Pearson g1) of every Wholesale Customers column with at least three distinct values
and no negative one, the statistic behind `table`'s right-skew note.
"""

import os
import re

import pandas as pd
import scipy.stats

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "datasets", "customer_personality", "marketing_campaign.csv")
OUT = os.path.join(ROOT, "tests", "fixtures", "prep")


def snake(s):
    return re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_")


def main():
    df = pd.read_csv(DATA, dtype=str, keep_default_na=False)
    out = pd.DataFrame({"ID": df["ID"].astype("int64")})
    income = pd.to_numeric(df["Income"].replace("", None))
    median = income.median()
    out["Income"] = income.fillna(median)
    day = pd.to_datetime(df["Dt_Customer"], format="%d-%m-%Y")
    out["Dt_Customer_days"] = (pd.Timestamp("2014-07-01") - day).dt.days
    for col in ["Education", "Marital_Status"]:
        share = df[col].value_counts(normalize=True)
        rare = set(share[share < 0.01].index)
        pooled = df[col].where(~df[col].isin(rare), "\x00other")
        dummies = pd.get_dummies(pooled).astype(int)
        for level in dummies.columns:
            name = snake(col) + "_" + ("other" if level == "\x00other" else snake(level))
            out[name] = dummies[level]
    os.makedirs(OUT, exist_ok=True)
    out.to_csv(os.path.join(OUT, "customer_personality_expected.csv"), index=False)
    with open(os.path.join(OUT, "customer_personality_fill.csv"), "w") as f:
        f.write("key,value\n")
        f.write("Income_median,%r\n" % float(median))
        f.write("missing_income,%d\n" % int(income.isna().sum()))

    wholesale = pd.read_csv(os.path.join(ROOT, "..", "shared", "datasets", "wholesale_customers",
                                         "wholesale_customers_data.csv"), sep=";")
    with open(os.path.join(OUT, "wholesale_skew.csv"), "w") as f:
        f.write("column,skewness\n")
        for col in wholesale.columns:
            v = wholesale[col].astype(float)
            if v.nunique() >= 3 and v.min() >= 0:
                f.write("%s,%r\n" % (col, float(scipy.stats.skew(v, bias=True))))


if __name__ == "__main__":
    main()
