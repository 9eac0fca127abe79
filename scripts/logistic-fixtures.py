#!/usr/bin/python3
"""
Writes test/fixtures/logistic.json: reference fits for src/maths/optimise/logistic.ts (the linear-probe method),
computed with scikit-learn (run with Debian's /usr/bin/python3, which sees python3-sklearn; the pyenv
python3 on PATH does not).

    /usr/bin/python3 scripts/logistic-fixtures.py

Each case: unit-normalised rows x (Gaussian class centres plus noise, seeded numpy), labels y, and for
each C, LogisticRegression(multi_class="multinomial", penalty="l2", C=C, fit_intercept=True,
solver="lbfgs", tol=1e-10, max_iter=100000) fitted on them (warm-started refits until coef_ stops
moving, see below): coef_, intercept_ and predict_proba(x).
scikit-learn returns the intercepts with Σ_k b_k = 0 from its zero start, as the TypeScript does. For
two classes scikit-learn reports one row, w with W = [−w, w] (its predict_proba is softmax([−z, z])).
Fixed seeds: rerunning reproduces the file byte for byte (given the same library versions).
"""
import json
import os
import warnings

import numpy as np
import sklearn
from sklearn.linear_model import LogisticRegression

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "test", "fixtures", "logistic.json")

# (name, seed, classes, dims, rows, noise, C values)
CASES = [
    ("3x8-separated", 1, 3, 8, 30, 0.3, [0.1, 1.0, 10.0]),
    ("4x16-overlapping", 2, 4, 16, 40, 1.0, [0.01, 1.0, 100.0]),
    ("5x32-few-rows", 3, 5, 32, 15, 0.5, [1.0, 1000.0]),
    ("3x12-unbalanced", 4, 3, 12, 60, 0.7, [0.3, 30.0]),
    ("2x10-binary", 5, 2, 10, 24, 0.8, [1.0, 10.0]),
]


def dataset(seed, classes, dims, rows, noise):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(classes, dims))
    # Every class gets at least one row; the rest are drawn unevenly.
    y = np.concatenate([np.arange(classes), rng.integers(0, classes, rows - classes)])
    x = centres[y] + noise * rng.normal(size=(rows, dims))
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return x, y


def main():
    cases = []
    for name, seed, classes, dims, rows, noise, cs in CASES:
        x, y = dataset(seed, classes, dims, rows, noise)
        fits = []
        for c in cs:
            m = LogisticRegression(
                multi_class="multinomial", penalty="l2", C=c, fit_intercept=True,
                solver="lbfgs", tol=1e-10, max_iter=100000, warm_start=True,
            )
            # scipy's L-BFGS-B also stops on a relative decrease below ftol = 2.2e-9, which scikit-learn
            # 1.2 leaves at its default: one fit ends with max|gradient| near 1e-6, and weakly penalised
            # coefficients are then off by ~1e-4. Warm-started refits resume from coef_ until it no
            # longer moves, so the reference is scikit-learn's own optimum, not an early stop.
            previous = None
            refits = 0
            while refits < 100:
                with warnings.catch_warnings():
                    # A ConvergenceWarning on the first fit would make a bad reference; on a refit from
                    # the optimum, scipy's line search aborting only means there is nothing left to gain.
                    warnings.simplefilter("error" if refits == 0 else "ignore")
                    m.fit(x, y)
                    refits += 1
                    current = np.concatenate([m.coef_.ravel(), m.intercept_])
                    if previous is not None and np.max(np.abs(current - previous)) < 1e-12:
                        break
                    previous = current
            fits.append({
                "c": c,
                "coef": m.coef_.tolist(),
                "intercept": m.intercept_.tolist(),
                "proba": m.predict_proba(x).tolist(),
                "refits": refits,
            })
        cases.append({"name": name, "classes": classes, "x": x.tolist(), "y": y.tolist(), "fits": fits})
    doc = {
        "generator": "scripts/logistic-fixtures.py",
        "versions": {"sklearn": sklearn.__version__, "numpy": np.__version__},
        "cases": cases,
    }
    with open(OUT, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT}: {len(cases)} cases, {sum(len(c['fits']) for c in cases)} fits")


if __name__ == "__main__":
    main()
