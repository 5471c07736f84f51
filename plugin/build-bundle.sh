#!/usr/bin/env bash
# Builds the Text to Video OFX plugin and assembles its bundle:
#
#   plugin/build-bundle.sh [--out DIR] [--cuda]
#
# gives DIR/TextToVideo.ofx.bundle/Contents/{Linux-x86-64/TextToVideo.ofx,
# Resources/org.texttovideo.TextToVideo.png, Resources/demo-model/} (DIR defaults to
# target/bundles); the demo model is the default whenever the node's Model Path is empty. Install by
# copying the whole TextToVideo.ofx.bundle folder into /usr/OFX/Plugins or a folder on
# OFX_PLUGIN_PATH. --cuda builds with CUDA support. Honours CARGO_TARGET_DIR and CARGO.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
out="$root/target/bundles"
features=()
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        --out=*) out="${1#--out=}"; shift ;;
        --cuda) features=(--features cuda); shift ;;
        -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
        *) echo "build-bundle.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

cargo="${CARGO:-cargo}"
"$cargo" build --release -p t2v-ofx-plugin "${features[@]}" --manifest-path "$root/Cargo.toml"

target="${CARGO_TARGET_DIR:-$root/target}"
case "$(uname -s)" in
    Linux) arch=Linux-x86-64; lib="libtext_to_video.so" ;;
    Darwin) arch=MacOS; lib="libtext_to_video.dylib" ;;
    *) arch=Win64; lib="text_to_video.dll" ;;
esac
bundle="$out/TextToVideo.ofx.bundle"
mkdir -p "$bundle/Contents/$arch" "$bundle/Contents/Resources"
# Copy then rename, so that a host (or a test) never loads half a file.
tmp="$bundle/Contents/$arch/.TextToVideo.ofx.$$"
cp "$target/release/$lib" "$tmp"
mv -f "$tmp" "$bundle/Contents/$arch/TextToVideo.ofx"
cp "$here/resources/org.texttovideo.TextToVideo.png" "$bundle/Contents/Resources/"
demo="$root/demo/model"
if [ -f "$demo/model_index.json" ]; then
    rm -rf "$bundle/Contents/Resources/demo-model"
    cp -R "$demo" "$bundle/Contents/Resources/demo-model"
else
    echo "build-bundle.sh: warning: $demo has no trained demo model; the bundle has no default model" >&2
fi

if command -v nm >/dev/null && [ "$arch" = Linux-x86-64 ]; then
    extra="$(nm -D --defined-only "$bundle/Contents/$arch/TextToVideo.ofx" | awk '{print $3}' | grep -v '^Ofx' || true)"
    if [ -n "$extra" ]; then
        echo "build-bundle.sh: unexpected exported symbols:" >&2
        echo "$extra" >&2
        exit 1
    fi
fi
echo "$bundle"
