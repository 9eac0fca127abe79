#!/usr/bin/python3
"""
Writes test/fixtures/metrics.json: reference values for src/maths/metrics.ts, computed independently
with scikit-learn and numpy (run with Debian's /usr/bin/python3, which sees python3-sklearn; the pyenv
python3 on PATH does not).

    /usr/bin/python3 scripts/metric-fixtures.py

Scores follow the project's convention: larger = more in-distribution (ID). The references are the
codebases' own formulas (METHODS.md §9), not a port of the TypeScript:
  - auroc: sklearn roc_auc_score with ID labelled 1.
  - hendrycks: fpr_and_fdr_at_recall as in the MCM / NegLabel repositories (Hendrycks' outlier-exposure
    code), re-typed below line for line; it returns the cut-off's threshold and recall as well.
  - openood: OpenOOD v1.5 auc_and_fpr_recall: roc_curve(ood_indicator, -conf), first point with
    tpr >= 0.95; AUPR-In / AUPR-Out = sklearn auc over precision_recall_curve.
  - detection accuracy: brute force over every distinct score and +inf.
  - histograms: numpy.histogram.
Cases use fixed seeds, so rerunning reproduces the file byte for byte (given the same library versions).
"""
import json
import os
import sys

import numpy as np
import sklearn
from sklearn import metrics

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "test", "fixtures", "metrics.json")

TPRS = (0.95, 0.9)


def stable_cumsum(arr, rtol=1e-05, atol=1e-08):
    out = np.cumsum(arr, dtype=np.float64)
    expected = np.sum(arr, dtype=np.float64)
    if not np.allclose(out[-1], expected, rtol=rtol, atol=atol):
        raise RuntimeError("cumsum was found to be unstable: its last element does not correspond to sum")
    return out


def fpr_and_fdr_at_recall(y_true, y_score, recall_level=0.95, pos_label=None):
    """The MCM / NegLabel function, unchanged except that it also returns where it cut."""
    classes = np.unique(y_true)
    if pos_label is None and not (
        np.array_equal(classes, [0, 1])
        or np.array_equal(classes, [-1, 1])
        or np.array_equal(classes, [0])
        or np.array_equal(classes, [-1])
        or np.array_equal(classes, [1])
    ):
        raise ValueError("Data is not binary and pos_label is not specified")
    elif pos_label is None:
        pos_label = 1.0

    # make y_true a boolean vector
    y_true = y_true == pos_label

    # sort scores and corresponding truth values
    desc_score_indices = np.argsort(y_score, kind="mergesort")[::-1]
    y_score = y_score[desc_score_indices]
    y_true = y_true[desc_score_indices]

    # y_score typically has many tied values. Here we extract
    # the indices associated with the distinct values. We also
    # concatenate a value for the end of the curve.
    distinct_value_indices = np.where(np.diff(y_score))[0]
    threshold_idxs = np.r_[distinct_value_indices, y_true.size - 1]

    # accumulate the true positives with decreasing threshold
    tps = stable_cumsum(y_true)[threshold_idxs]
    fps = 1 + threshold_idxs - tps  # add one because of zero-based indexing

    thresholds = y_score[threshold_idxs]

    recall = tps / tps[-1]

    last_ind = tps.searchsorted(tps[-1])
    sl = slice(last_ind, None, -1)  # [last_ind::-1]
    recall, fps, tps, thresholds = np.r_[recall[sl], 1], np.r_[fps[sl], 0], np.r_[tps[sl], 0], thresholds[sl]

    cutoff = np.argmin(np.abs(recall - recall_level))

    fpr = fps[cutoff] / (np.sum(np.logical_not(y_true)))
    # Addition for the fixtures: which point was cut (the sentinel has no threshold).
    sentinel = cutoff == len(recall) - 1
    return {
        "fpr": float(fpr),
        "tpr": float(recall[cutoff]),
        "threshold": None if sentinel else float(thresholds[cutoff]),
        "sentinelSelected": bool(sentinel),
    }


def get_measures_hendrycks(id_scores, ood_scores, recall_level):
    # get_measures(_pos=ID conf, _neg=OOD conf): ID first, labelled 1.
    examples = np.concatenate([id_scores, ood_scores])
    labels = np.zeros(len(examples), dtype=np.int32)
    labels[: len(id_scores)] += 1
    return fpr_and_fdr_at_recall(labels, examples, recall_level)


def openood(id_scores, ood_scores, tpr_th):
    """OpenOOD v1.5 openood/evaluators/metrics.py::auc_and_fpr_recall (conf = ID then OOD, OOD label -1)."""
    conf = np.concatenate([id_scores, ood_scores])
    label = np.r_[np.zeros(len(id_scores), dtype=np.int64), -np.ones(len(ood_scores), dtype=np.int64)]
    ood_indicator = np.zeros_like(label)
    ood_indicator[label == -1] = 1

    fpr_list, tpr_list, thresholds = metrics.roc_curve(ood_indicator, -conf)
    idx = np.argmax(tpr_list >= tpr_th)
    fpr = fpr_list[idx]

    precision_in, recall_in, _ = metrics.precision_recall_curve(1 - ood_indicator, conf)
    precision_out, recall_out, _ = metrics.precision_recall_curve(ood_indicator, -conf)

    auroc = metrics.auc(fpr_list, tpr_list)
    aupr_in = metrics.auc(recall_in, precision_in)
    aupr_out = metrics.auc(recall_out, precision_out)

    # Flagged OOD ⇔ -conf >= thresholds[idx] ⇔ conf <= cut. In the ID-accept convention (score >= θ
    # ⇔ ID) that is θ = the smallest observed score above the cut.
    cut = -thresholds[idx]
    above = conf[conf > cut]
    threshold = float(above.min()) if above.size else float("inf")
    return {
        "fpr": float(fpr),
        "oodTpr": float(tpr_list[idx]),
        "confCut": float(cut),
        "threshold": threshold,
        "tpr": float(np.mean(id_scores >= threshold)),
        "auroc": float(auroc),
        "auprIn": float(aupr_in),
        "auprOut": float(aupr_out),
    }


def detection_accuracy(id_scores, ood_scores):
    # Every distinct score and +inf, highest first; np.argmax keeps the first (highest) maximiser.
    candidates = np.r_[np.inf, np.unique(np.concatenate([id_scores, ood_scores]))[::-1]]
    accs = np.array([0.5 * (np.mean(id_scores >= t) + np.mean(ood_scores < t)) for t in candidates])
    best = int(np.argmax(accs))
    return {"accuracy": float(accs[best]), "threshold": float(candidates[best])}


def roc_points(id_scores, ood_scores):
    conf = np.concatenate([id_scores, ood_scores])
    y = np.r_[np.ones(len(id_scores)), np.zeros(len(ood_scores))]
    fpr, tpr, thr = metrics.roc_curve(y, conf, drop_intermediate=False)
    # sklearn's first threshold is thresholds[1] + 1 (1.2) or inf (≥ 1.3); ours is +Infinity.
    return {"fpr": fpr.tolist(), "tpr": tpr.tolist(), "thresholds": [float("inf")] + thr[1:].tolist()}


def case(name, id_scores, ood_scores, roc=False, note=None):
    i = np.asarray(id_scores, dtype=np.float64)
    o = np.asarray(ood_scores, dtype=np.float64)
    y = np.r_[np.ones(len(i), dtype=np.int64), np.zeros(len(o), dtype=np.int64)]
    conf = np.concatenate([i, o])
    out = {
        "name": name,
        "id": i.tolist(),
        "ood": o.tolist(),
        "auroc": float(metrics.roc_auc_score(y, conf)),
        "fpr": [
            {"tpr": t, "hendrycks": get_measures_hendrycks(i, o, t), "openood": openood(i, o, t)} for t in TPRS
        ],
        "detection": detection_accuracy(i, o),
    }
    oo = out["fpr"][0]["openood"]
    out["auprIn"] = oo["auprIn"]
    out["auprOut"] = oo["auprOut"]
    if note:
        out["note"] = note
    if roc:
        out["roc"] = roc_points(i, o)
    return out


def histogram(values, bins, rng=None, name=None):
    v = np.asarray(values, dtype=np.float64)
    counts, edges = np.histogram(v, bins=bins, range=rng)
    return {
        "name": name,
        "values": v.tolist(),
        "bins": bins,
        "range": None if rng is None else [float(rng[0]), float(rng[1])],
        "edges": edges.tolist(),
        "counts": counts.tolist(),
    }


def main():
    cases = [
        case("one each, separated", [0.9], [0.1], roc=True),
        case("one each, equal", [0.5], [0.5], roc=True),
        case("one each, inverted", [0.1], [0.9], roc=True),
        case("all equal", [0.3] * 5, [0.3] * 4, roc=True),
        case("perfect separation", [0.6, 0.7, 0.8, 0.9], [0.1, 0.2, 0.3], roc=True),
        case("inverted separation", [0.1, 0.2, 0.3], [0.6, 0.7, 0.8, 0.9], roc=True),
        case("ID [1,2,3] vs OOD [2]", [1, 2, 3], [2], roc=True),
        case(
            "equal recall: the lowest threshold wins",
            np.arange(1, 21),
            [1.5, 1.7, 25],
            roc=True,
            note="recall 19/20 = 0.95 at thresholds 2, 1.7 and 1.5; the reversed slice meets 1.5 first",
        ),
        case(
            "collinear ROC point dropped (OpenOOD)",
            [0.1] * 10 + [0.2] * 10 + [0.3] * 10 + [0.9] * 70,
            [0.1] * 90 + [0.2] * 5 + [0.3] * 5,
            roc=True,
            note="OOD-positive ROC points (10,90),(20,95),(30,100) are collinear: the 95% point is dropped",
        ),
    ]

    rng = np.random.default_rng(20240611)
    # No recall within 0.05 of 0.95: ID sits at two values, so the recalls are 0.75 and 1.
    cases.append(
        case(
            "sentinel edge: no recall near 0.95",
            np.r_[np.full(150, 0.8), np.full(50, 0.4)],
            np.round(rng.uniform(0, 1, 120), 1),
            note="recalls are 0.75 and 1 only; the appended sentinel (recall 1, fps 0) must not win",
        )
    )
    cases.append(
        case(
            "heavy ties, 1 decimal",
            np.round(rng.normal(0.5, 0.3, 500), 1),
            np.round(rng.normal(0.2, 0.3, 300), 1),
            roc=True,
        )
    )
    cases.append(
        case("heavy ties, 2 decimals", np.round(rng.normal(0.5, 0.3, 500), 2), np.round(rng.normal(0.3, 0.3, 300), 2))
    )
    # Six decimals keep the file small while leaving almost every score distinct.
    cases.append(
        case("normal overlap", np.round(rng.normal(1.0, 1.0, 2000), 6), np.round(rng.normal(0.0, 1.0, 1500), 6))
    )
    cases.append(
        case("unequal sizes", np.round(rng.normal(0.4, 0.2, 20), 6), np.round(rng.normal(0.2, 0.2, 1000), 6))
    )

    by_name = {c["name"]: c for c in cases}
    histograms = [
        histogram(by_name["normal overlap"]["id"], 20, name="normal overlap ID, auto range"),
        histogram(by_name["heavy ties, 1 decimal"]["ood"], 7, (-0.5, 1.5), name="heavy ties OOD, range, some outside"),
        histogram([0.3] * 5, 3, name="all equal: range widened by ±0.5"),
        histogram(np.linspace(0, 1, 11), 10, (0.0, 1.0), name="values on edges: last bin closed"),
        histogram([0.1, 0.2, 0.3], 4, (0.15, 0.25), name="outside values dropped"),
    ]

    for c in cases:
        for f in c["fpr"]:
            assert not f["hendrycks"]["sentinelSelected"], c["name"]

    def encode(x):
        # JSON has no Infinity; the test decodes these strings back.
        if isinstance(x, float) and not np.isfinite(x):
            return "Infinity" if x > 0 else "-Infinity"
        if isinstance(x, dict):
            return {k: encode(v) for k, v in x.items()}
        if isinstance(x, list):
            return [encode(v) for v in x]
        return x

    doc = {
        "generator": "scripts/metric-fixtures.py",
        "versions": {"python": sys.version.split()[0], "numpy": np.__version__, "sklearn": sklearn.__version__},
        "cases": cases,
        "histograms": histograms,
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(encode(doc), f, separators=(",", ":"), allow_nan=False)
        f.write("\n")
    print(f"wrote {os.path.relpath(OUT)}: {len(cases)} cases, {len(histograms)} histograms")


if __name__ == "__main__":
    main()
