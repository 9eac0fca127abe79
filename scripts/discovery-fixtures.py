#!/usr/bin/env python3
"""
Writes test/fixtures/discovery.json: reference values for the discovery maths (src/maths/clustering/hungarian.ts,
brent.ts, silhouette.ts, kmeans.ts), computed independently with numpy and scipy (the python3 on PATH
has both; scikit-learn is not needed):

  - assignment: scipy.optimize.linear_sum_assignment, minimising and maximising.
  - clustering accuracy: GCD's split_cluster_acc_v2 (project_utils/cluster_and_log_utils.py), re-typed
    with scipy's linear_sum_assignment as its `linear_assignment`.
  - brent: scipy.optimize.minimize_scalar(method="bounded"), recording every point it evaluates.
  - silhouette: the definition (Rousseeuw 1987) in numpy, s = 0 for a row alone in its cluster.
  - ss-kmeans: GCD's fit_mix_once (methods/clustering/faster_mix_k_means_pytorch.py) in numpy, with
    its kpp seeded by mulberry32 (src/maths/random.ts, re-typed) in place of numpy's RandomState, plus
    this project's one addition: a known cluster with no labelled rows starts at a given anchor and
    stays there.

    python3 scripts/discovery-fixtures.py

Cases use fixed seeds, so rerunning reproduces the file (given the same library versions).
"""
import json
import math
import os

import numpy as np
import scipy
from scipy.optimize import linear_sum_assignment, minimize_scalar

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "test", "fixtures", "discovery.json")


def mulberry32(seed):
    a = seed & 0xFFFFFFFF

    def imul(x, y):
        return (x * y) & 0xFFFFFFFF

    def rand():
        nonlocal a
        a = (a + 0x6D2B79F5) & 0xFFFFFFFF
        t = a
        t = imul(t ^ (t >> 15), t | 1)
        t ^= (t + imul(t ^ (t >> 7), t | 61)) & 0xFFFFFFFF
        return ((t ^ (t >> 14)) & 0xFFFFFFFF) / 4294967296

    return rand


def assignment_cases(rng):
    cases = []
    for rows, cols in [(1, 1), (3, 3), (5, 5), (4, 6), (6, 4), (7, 7), (8, 5)]:
        cost = rng.integers(0, 50, size=(rows, cols)).astype(float) + rng.random((rows, cols))
        for maximize in (False, True):
            r, c = linear_sum_assignment(cost, maximize=maximize)
            col_of = [-1] * rows
            for i, j in zip(r, c):
                col_of[int(i)] = int(j)
            cases.append({"rows": rows, "cols": cols, "cost": cost.ravel().tolist(), "maximize": maximize,
                          "colOf": col_of, "total": float(cost[r, c].sum())})
    return cases


def split_cluster_acc_v2(y_true, y_pred, mask):
    y_true = y_true.astype(int)
    old_classes_gt = set(y_true[mask])
    new_classes_gt = set(y_true[~mask])
    D = max(y_pred.max(), y_true.max()) + 1
    w = np.zeros((D, D), dtype=int)
    for i in range(y_pred.size):
        w[y_pred[i], y_true[i]] += 1
    ind = np.vstack(linear_sum_assignment(w.max() - w)).T
    ind_map = {j: i for i, j in ind}
    total_acc = sum([w[i, j] for i, j in ind]) * 1.0 / y_pred.size
    old_acc, total_old = 0, 0
    for i in old_classes_gt:
        old_acc += w[ind_map[i], i]
        total_old += sum(w[:, i])
    new_acc, total_new = 0, 0
    for i in new_classes_gt:
        new_acc += w[ind_map[i], i]
        total_new += sum(w[:, i])
    return total_acc, (old_acc / total_old if total_old else None), (new_acc / total_new if total_new else None)


def accuracy_cases(rng):
    cases = []
    for n, classes, clusters, old in [(40, 4, 4, 2), (60, 5, 7, 3), (50, 6, 4, 2), (30, 3, 3, 3)]:
        truth = rng.integers(0, classes, size=n)
        # Mostly right under a permuted naming of the clusters, with some noise, so the matching is unique.
        perm = rng.permutation(max(classes, clusters))
        pred = np.array([perm[t] % clusters if rng.random() < 0.8 else rng.integers(0, clusters) for t in truth])
        mask = truth < old
        a, o, nw = split_cluster_acc_v2(truth, pred, mask)
        cases.append({"truth": truth.tolist(), "clusters": pred.tolist(), "old": old, "all": a,
                      "oldAcc": None if o is None else float(o), "newAcc": None if nw is None else float(nw)})
    return cases


def brent_cases():
    cases = []

    def run(name, f, lo, hi, table=None):
        xs = []

        def g(x):
            xs.append(float(x))
            return f(x)

        res = minimize_scalar(g, bounds=(lo, hi), method="bounded")
        case = {"name": name, "lower": lo, "upper": hi, "x": float(res.x), "fx": float(res.fun), "evaluated": xs}
        if table is not None:
            case["table"] = table
        cases.append(case)

    run("smooth", lambda x: (x - 2.7) ** 2 + math.sin(3 * x), 0.0, 10.0)
    run("quartic", lambda x: (x - 7.25) ** 4 - 3 * x, 1.0, 9.0)
    # GCD's use: minus an accuracy that depends on int(K) only.
    table = [0.31, 0.42, 0.55, 0.71, 0.86, 0.93, 0.88, 0.80, 0.74, 0.66, 0.61, 0.58, 0.52, 0.49, 0.45, 0.41, 0.40]
    run("integer-steps", lambda x: -table[int(x)], 0.0, float(len(table) - 1), table)
    return cases


def silhouette_reference(x, labels):
    n = len(labels)
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))
    s = np.zeros(n)
    clusters = sorted(set(labels.tolist()))
    for i in range(n):
        own = labels == labels[i]
        if own.sum() == 1:
            continue
        a = d[i, own].sum() / (own.sum() - 1)
        b = min(d[i, labels == c].mean() for c in clusters if c != labels[i])
        s[i] = (b - a) / max(a, b)
    return d, float(s.mean())


def silhouette_cases(rng):
    cases = []
    for n, k, dim in [(12, 3, 2), (30, 4, 5), (9, 2, 3)]:
        x = rng.normal(size=(n, dim)).astype(np.float32)
        labels = np.concatenate([np.arange(k), rng.integers(0, k, size=n - k)])
        if n == 9:
            labels[0] = k  # a singleton cluster
        d, score = silhouette_reference(x.astype(np.float64), labels)
        cases.append({"x": x.ravel().tolist(), "rows": n, "cols": dim, "labels": labels.tolist(), "score": score,
                      "distances": d.ravel().tolist()})
    return cases


def ss_kmeans(x, fixed, known, anchors, k, seed, restarts, max_iter=100, tol=1e-4):
    """GCD's fit_mix (n_init = restarts) in float64, labelled rows fixed, anchors for known clusters without rows."""
    rand = mulberry32(seed)
    free = np.where(fixed < 0)[0]
    u = x[free]
    start = []
    for c in range(known):
        rows = np.where(fixed == c)[0]
        start.append(x[rows].mean(0) if len(rows) else anchors[c])
    best = None
    for _ in range(restarts):
        # kpp(u_feats, pre_centers, k=known+k): D² sampling of the free rows against every centre so far.
        C = np.array(start, dtype=np.float64).reshape(-1, x.shape[1])
        if C.shape[0] == 0:
            C = u[min(len(u) - 1, int(rand() * len(u)))][None, :]
        while C.shape[0] < known + k:
            d2 = ((u[:, None, :] - C[None, :, :]) ** 2).sum(-1).min(1)
            prob = d2 / d2.sum()
            cum = np.cumsum(prob)
            r = rand()
            ind = int(np.nonzero(cum >= r)[0][0])
            C = np.vstack([C, u[ind]])
        labels = fixed.copy()
        it = 0
        while it < max_iter:
            it += 1
            old = C.copy()
            labels[free] = ((u[:, None, :] - C[None, :, :]) ** 2).sum(-1).argmin(1)
            for c in range(known + k):
                sel = labels == c
                anchored = c < known and not (fixed == c).any()
                if sel.any() and not anchored:
                    C[c] = x[sel].mean(0)
            shift = np.sqrt(((C - old) ** 2).sum(1)).sum()
            if shift ** 2 < tol:
                break
        labels[free] = ((u[:, None, :] - C[None, :, :]) ** 2).sum(-1).argmin(1)
        inertia = float(((x - C[labels]) ** 2).sum())
        if best is None or inertia < best["inertia"]:
            best = {"assignment": labels.tolist(), "centroids": C.ravel().tolist(), "inertia": inertia, "iterations": it}
    return best


def kmeans_cases(rng):
    cases = []
    # Hand-made: four groups in 2-D around (0,0), (6,0), (0,6), (6,6); the first two are known classes
    # with two labelled rows each, the other two are new.
    centres = np.array([[0, 0], [6, 0], [0, 6], [6, 6]], dtype=np.float64)
    pts, truth = [], []
    for c, centre in enumerate(centres):
        for _ in range(6):
            pts.append(centre + rng.normal(scale=0.7, size=2))
            truth.append(c)
    x = np.array(pts, dtype=np.float32).astype(np.float64)
    fixed = np.full(len(x), -1)
    fixed[[0, 1]] = 0
    fixed[[6, 7]] = 1
    for seed, restarts in [(0, 1), (7, 3)]:
        ref = ss_kmeans(x, fixed, 2, None, 2, seed, restarts)
        cases.append({"name": f"labelled-anchors-seed{seed}", "x": x.ravel().tolist(), "rows": len(x), "cols": 2, "fixed": fixed.tolist(),
                      "known": 2, "k": 2, "seed": seed, "restarts": restarts, "truth": truth, **ref})
    # Known class 1 has no labelled rows: its anchor (6.5, -0.5) stands for it and does not move.
    fixed2 = fixed.copy()
    fixed2[[6, 7]] = -1
    anchors = np.array([[0, 0], [6.5, -0.5]], dtype=np.float64)
    ref = ss_kmeans(x, fixed2, 2, anchors, 2, 3, 2)
    cases.append({"name": "text-anchor", "x": x.ravel().tolist(), "rows": len(x), "cols": 2, "fixed": fixed2.tolist(), "known": 2, "k": 2,
                  "anchors": anchors.ravel().tolist(), "seed": 3, "restarts": 2, "truth": truth, **ref})
    # Plain k-means (no known clusters): k-means++ starts from a uniformly drawn row.
    ref = ss_kmeans(x, np.full(len(x), -1), 0, None, 4, 11, 2)
    cases.append({"name": "plain", "x": x.ravel().tolist(), "rows": len(x), "cols": 2, "fixed": [-1] * len(x), "known": 0, "k": 4,
                  "seed": 11, "restarts": 2, "truth": truth, **ref})
    return cases


def main():
    rng = np.random.default_rng(20250)
    out = {
        "versions": {"numpy": np.__version__, "scipy": scipy.__version__},
        "mulberry32": [mulberry32(5)() for _ in range(1)] + [r for r in (lambda f: [f() for _ in range(4)])(mulberry32(123))],
        "assignment": assignment_cases(rng),
        "accuracy": accuracy_cases(rng),
        "brent": brent_cases(),
        "silhouette": silhouette_cases(rng),
        "kmeans": kmeans_cases(rng),
    }
    with open(OUT, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {os.path.relpath(OUT)}")


if __name__ == "__main__":
    main()
