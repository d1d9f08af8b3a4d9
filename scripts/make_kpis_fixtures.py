#!/usr/bin/python3
"""Fixtures for tests/test_kpis.cpp: a small gifts export, its segments (segments.csv and a
labels.h5 with /ids), a campaign file, and the KPIs computed independently with pandas.

Run by hand (Debian's python3 with python3-numpy, python3-pandas, python3-h5py):
    /usr/bin/python3 scripts/make_kpis_fixtures.py
Writes tests/fixtures/kpis/. The reference follows docs/kpis.md and docs/prep.md's cleaning:
exact-duplicate rows dropped, rows grouped by (donor, transaction id) with the earliest date,
a transaction's net amount > 0 a gift, < 0 a refund, 0 neither; the window is the days
[as_of, as_of + window_days).
"""
import json
import math
import os

import h5py
import numpy as np
import pandas as pd

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "kpis")
AS_OF = pd.Timestamp("2022-07-01")
WINDOW = 365
Z = 1.959963984540054


def wilson(x, n):
    # Wilson (1927) score interval, no continuity correction: Newcombe (1998) method 3.
    p = x / n
    a = 2 * n * p + Z * Z
    b = Z * math.sqrt(Z * Z + 4 * n * p * (1 - p))
    c = 2 * (n + Z * Z)
    return (a - b) / c, (a + b) / c


def newcombe(x1, n1, x2, n2):
    # Newcombe (1998) method 10, hybrid score interval for p1 - p2.
    p1, p2 = x1 / n1, x2 / n2
    l1, u1 = wilson(x1, n1)
    l2, u2 = wilson(x2, n2)
    d = p1 - p2
    return d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)


# The reference implementation must reproduce Newcombe's Table II (method 10) first.
for (x1, n1, x2, n2), (lo, hi) in {(56, 70, 48, 80): (0.0524, 0.3339), (9, 10, 3, 10): (0.1705, 0.8090),
                                   (5, 56, 0, 29): (-0.0381, 0.1926),
                                   (0, 10, 0, 20): (-0.1611, 0.2775), (0, 10, 0, 10): (-0.2775, 0.2775)}.items():
    got = newcombe(x1, n1, x2, n2)
    assert abs(got[0] - lo) < 6e-5 and abs(got[1] - hi) < 6e-5, ((x1, n1, x2, n2), got)


def make_files(rng):
    donors = [f"D{i:04d}" for i in range(1, 241)]
    rows = []
    tx = 0
    for d in donors:
        n = int(rng.integers(1, 12))
        for _ in range(n):
            tx += 1
            day = pd.Timestamp("2020-01-01") + pd.Timedelta(days=int(rng.integers(0, 1460)))
            amount = round(float(rng.choice([5, 10, 25, 50, 100])) * float(rng.uniform(0.5, 2.0)), 2)
            when = day + pd.Timedelta(minutes=int(rng.integers(0, 1440)))
            rows.append((d, when, amount, f"T{tx}"))
            r = rng.random()
            if r < 0.08:  # a refund of the same gift (its own transaction)
                tx += 1
                rows.append((d, when + pd.Timedelta(days=int(rng.integers(1, 40))), -amount, f"T{tx}"))
            elif r < 0.12:  # a second line of the same transaction
                rows.append((d, when, round(float(rng.uniform(1, 20)), 2), f"T{tx}"))
            elif r < 0.14:  # a cancelled order: the rows net to zero
                rows.append((d, when, -amount, f"T{tx}"))
            elif r < 0.16:  # an exact duplicate row (an export glitch)
                rows.append(rows[-1])
    df = pd.DataFrame(rows, columns=["donor_id", "gift_date", "amount", "transaction_id"])
    df["gift_date"] = df["gift_date"].dt.strftime("%Y-%m-%d %H:%M")
    df["amount"] = df["amount"].map(lambda v: f"{v:.2f}")
    df = df.sample(frac=1.0, random_state=7).reset_index(drop=True)
    return donors, df


def transactions(raw, id_col, date_col, amount, tx_col, date_format, as_of):
    """The cleaned transactions dated before as_of + WINDOW: raw is the CSV read as text."""
    g = raw.drop_duplicates()  # exact duplicates, as text
    g = g[g[id_col].fillna("").str.strip() != ""]
    g = g.assign(donor_id=g[id_col].str.strip(), amount=amount(g),
                 day=pd.to_datetime(g[date_col], format=date_format).dt.normalize(), tx=g[tx_col])
    g = g[g["day"] < as_of + pd.Timedelta(days=WINDOW)]
    t = g.groupby(["donor_id", "tx"], sort=False).agg(
        day=("day", "min"), net=("amount", "sum"), gross=("amount", lambda a: a.abs().sum())).reset_index()
    zero = t["net"].abs() <= 1e-9 * np.maximum(1.0, t["gross"])
    t["gift"] = (~zero) & (t["net"] > 0)
    return t


def reference(t, labels, campaign, as_of=AS_OF):
    end = as_of + pd.Timedelta(days=WINDOW)
    AS = as_of
    before = set(t.loc[t["day"] < AS, "donor_id"])
    w = t[t["day"] >= AS]
    lab = labels.rename(columns={"id": "donor_id"})
    per = w.groupby("donor_id").agg(net=("net", "sum"),
                                    gifts=("gift", "sum"),
                                    gift_amount=("net", lambda s: s[w.loc[s.index, "gift"]].sum()))
    m = lab.merge(per, how="left", left_on="donor_id", right_index=True).fillna({"net": 0.0, "gifts": 0, "gift_amount": 0.0})
    m["retained"] = m["gifts"] > 0

    def kpis(part, segment, name):
        members = len(part)
        gifts_n = int(part["gifts"].sum())
        return {"segment": segment, "name": name, "members": members, "retained": int(part["retained"].sum()),
                "retention": part["retained"].mean(), "gifts": gifts_n, "gift_amount": part["gift_amount"].sum(),
                "average_gift": part["gift_amount"].sum() / gifts_n if gifts_n else None,
                "net_revenue": part["net"].sum(), "revenue_per_member": part["net"].sum() / members}

    segs = [kpis(part, int(s), part["segment_name"].iloc[0]) for s, part in m.groupby("segment")]
    out = {"as_of": AS.strftime("%Y-%m-%d"), "window_days": WINDOW,
           "window_end": (end - pd.Timedelta(days=1)).strftime("%Y-%m-%d"),
           "n_members": len(lab), "members_not_in_export": int((~lab["donor_id"].isin(before)).sum()),
           "window_transactions": len(w),
           "window_donors_unlabelled": int(w.loc[w["gift"] & ~w["donor_id"].isin(lab["donor_id"]), "donor_id"].nunique()),
           "segments": segs, "overall": kpis(m, -1, "all members")}

    out["campaigns"] = []
    if campaign is None:
        return out
    c = campaign.merge(lab, how="inner", on="donor_id")
    c["treated"] = c["arm"] == "treated"
    camps = []
    for name in pd.unique(campaign["campaign"]):
        part = c[c["campaign"] == name]

        def arm(p):
            n = len(p)
            return {"members": n, "responders": int(p["responded"].sum()),
                    "response_rate": p["responded"].mean() if n else None, "amount": p["amount"].sum(),
                    "amount_per_member": p["amount"].sum() / n if n else None}

        def lift(p, segment, seg_name):
            tr, co = p[p["treated"]], p[~p["treated"]]
            r = {"segment": segment, "name": seg_name, "treated": arm(tr), "control": arm(co)}
            if len(tr) and len(co):
                r["lift"] = tr["responded"].mean() - co["responded"].mean()
                r["lift_ci95"] = list(newcombe(int(tr["responded"].sum()), len(tr), int(co["responded"].sum()), len(co)))
                r["amount_lift"] = tr["amount"].sum() / len(tr) - co["amount"].sum() / len(co)
            else:
                r["lift"] = r["lift_ci95"] = r["amount_lift"] = None
            return r

        segs_c = []
        for s in segs:
            segs_c.append(lift(part[part["segment"] == s["segment"]], s["segment"], s["name"]))
        camps.append({"campaign": name, "rows": int((campaign["campaign"] == name).sum()),
                      "rows_unlabelled": int(((campaign["campaign"] == name) & ~campaign["donor_id"].isin(lab["donor_id"])).sum()),
                      "segments": segs_c, "overall": lift(part, -1, "all members")})
    out["campaigns"] = camps
    return out


def online_retail():
    """Online Retail (real data, /work/shared/datasets): customers with a purchase before
    2011-07-01 in three segments by country (an independent rule, not a fit), and the KPIs of
    the rest of 2011 (the export ends on 2011-12-09)."""
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "datasets",
                       "online_retail", "online_retail_sample_40000.csv")
    if not os.path.exists(src):
        print("online retail: no", src, "(its fixture is kept as it is)")
        return
    as_of = pd.Timestamp("2011-07-01")
    raw = pd.read_csv(src, dtype=str, keep_default_na=False)
    t = transactions(raw, "CustomerID", "InvoiceDate",
                     lambda g: g["Quantity"].astype(float) * g["UnitPrice"].astype(float), "InvoiceNo",
                     "%m/%d/%Y %H:%M", as_of)
    before = raw[(pd.to_datetime(raw["InvoiceDate"], format="%m/%d/%Y %H:%M") < as_of) & (raw["CustomerID"] != "")]
    country = before.groupby("CustomerID")["Country"].first()
    eu = {"France", "Germany", "Spain", "Belgium", "Netherlands", "Portugal", "Italy", "Finland", "Sweden",
          "Denmark", "Austria", "Poland", "Greece", "Cyprus", "Czech Republic", "Lithuania", "Malta",
          "EIRE", "Switzerland", "Norway", "Iceland", "Channel Islands"}
    seg = [0 if c == "United Kingdom" else 1 if c in eu else 2 for c in country]
    names = ["United Kingdom", "Rest of Europe", "Rest of the world"]
    labels = pd.DataFrame({"id": country.index, "segment": seg, "segment_name": [names[s] for s in seg],
                           "distance": 0.0})
    labels.to_csv(os.path.join(OUT, "online_retail_segments.csv"), index=False)
    ref = reference(t, labels.drop(columns=["distance"]), None, as_of)
    with open(os.path.join(OUT, "online_retail_expected.json"), "w") as f:
        json.dump(ref, f, indent=1, default=float)
        f.write("\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240617)
    donors, gifts = make_files(rng)
    gifts.to_csv(os.path.join(OUT, "gifts.csv"), index=False)

    # Members as of AS_OF: donors with a transaction before it (drawn from the file), in three
    # segments, plus one id that never gave (counted as not in the export).
    day = pd.to_datetime(gifts["gift_date"])
    early = sorted(set(gifts.loc[day < AS_OF, "donor_id"]))
    members = [d for d in early if rng.random() < 0.85] + ["D9999"]
    names = ["Loyal", "Lapsing", "New & small"]
    seg = rng.integers(0, 3, size=len(members))
    labels = pd.DataFrame({"id": members, "segment": seg, "segment_name": [names[s] for s in seg],
                           "distance": np.round(rng.uniform(0, 3, size=len(members)), 4)})
    labels.to_csv(os.path.join(OUT, "segments.csv"), index=False)
    with h5py.File(os.path.join(OUT, "labels.h5"), "w", libver="earliest") as f:
        f.create_dataset("labels", data=seg.astype(np.int32), track_times=False)
        f.create_dataset("distances", data=labels["distance"].to_numpy(np.float32), track_times=False)
        f.create_dataset("ids", data=np.array(members, dtype=object), dtype=h5py.string_dtype("utf-8"),
                         track_times=False)

    # Two campaigns, each to a random half of all donors (labelled or not), 30% held out.
    rows = []
    for name, base, uplift in [("spring_appeal", 0.10, 0.08), ("summer_mailing", 0.20, 0.0)]:
        for d in donors + ["D9999"]:
            if rng.random() < 0.5:
                continue
            treated = rng.random() >= 0.3
            responded = rng.random() < base + (uplift if treated else 0.0)
            amount = round(float(rng.uniform(5, 80)), 2) if responded else 0.0
            rows.append((d, name, "treated" if treated else "control", int(responded), amount))
    campaign = pd.DataFrame(rows, columns=["donor_id", "campaign", "arm", "responded", "amount"])
    campaign.to_csv(os.path.join(OUT, "campaign.csv"), index=False)
    # One campaign with no control arm (bad input).
    campaign[campaign["arm"] == "treated"].head(40).to_csv(os.path.join(OUT, "campaign_no_control.csv"), index=False)

    raw = pd.read_csv(os.path.join(OUT, "gifts.csv"), dtype=str, keep_default_na=False)
    t = transactions(raw, "donor_id", "gift_date", lambda g: g["amount"].astype(float), "transaction_id",
                     "%Y-%m-%d %H:%M", AS_OF)
    ref = reference(t, labels.drop(columns=["distance"]), campaign)
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(ref, f, indent=1, default=float)
        f.write("\n")
    online_retail()
    print("wrote", OUT, len(gifts), "gift rows,", len(members), "members,", len(campaign), "campaign rows")


if __name__ == "__main__":
    main()
