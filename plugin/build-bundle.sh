#!/usr/bin/env bash
# Builds the Text to Video OFX plugin and assembles its bundle:
#
#   plugin/build-bundle.sh [--out DIR] [--cuda]
#
# gives DIR/TextToVideo.ofx.bundle/Contents/{Linux-x86-64/TextToVideo.ofx,
# Resources/org.texttovideo.TextToVideo.png, Resources/demo-model/} (DIR defaults to
# target/bundles); the demo model is the default whenever the node's Model Path is empty. Install by
# copying the whole TextToVideo.ofx.bundle folder into /usr/OFX/Plugins or a folder on
# OFX_PLUGIN_PATH. --cuda also builds the CUDA engine (the node built with the `cuda` feature, in
# target/cuda) into Contents/<arch>/TextToVideo-cuda.so: TextToVideo.ofx stays the CPU build,
# which loads on any machine and hands over to the CUDA engine where an NVIDIA driver is present
# (plugin/src/engine.rs). --with-cuda-libs also copies the CUDA runtime libraries it needs
# (libcudart, libcublas, libcublasLt, libcurand: ~700 MB) from $CUDA_ROOT/lib64 into
# Contents/<arch>/cuda-libs, for machines with the driver but no CUDA 13 runtime.
# Honours CARGO_TARGET_DIR and CARGO.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
out="$root/target/bundles"
cuda=0
cuda_libs=0
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        --out=*) out="${1#--out=}"; shift ;;
        --cuda) cuda=1; shift ;;
        --with-cuda-libs) cuda=1; cuda_libs=1; shift ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "build-bundle.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

cargo="${CARGO:-cargo}"
"$cargo" build --release -p t2v-ofx-plugin --manifest-path "$root/Cargo.toml"

target="${CARGO_TARGET_DIR:-$root/target}"
case "$(uname -s)" in
    Linux) arch=Linux-x86-64; lib="libtext_to_video.so"; engine="TextToVideo-cuda.so" ;;
    Darwin) arch=MacOS; lib="libtext_to_video.dylib"; engine="" ;;
    *) arch=Win64; lib="text_to_video.dll"; engine="TextToVideo-cuda.dll" ;;
esac
bundle="$out/TextToVideo.ofx.bundle"
mkdir -p "$bundle/Contents/$arch" "$bundle/Contents/Resources"
# Copy then rename, so that a host (or a test) never loads half a file.
tmp="$bundle/Contents/$arch/.TextToVideo.ofx.$$"
cp "$target/release/$lib" "$tmp"
mv -f "$tmp" "$bundle/Contents/$arch/TextToVideo.ofx"
if [ -n "$engine" ]; then
    if [ "$cuda" = 1 ]; then
        "$cargo" build --release -p t2v-ofx-plugin --features cuda --target-dir "$target/cuda" \
            --manifest-path "$root/Cargo.toml"
        cp "$target/cuda/release/$lib" "$bundle/Contents/$arch/.$engine.$$"
        mv -f "$bundle/Contents/$arch/.$engine.$$" "$bundle/Contents/$arch/$engine"
        rm -rf "$bundle/Contents/$arch/cuda-libs"
        if [ "$cuda_libs" = 1 ]; then
            mkdir -p "$bundle/Contents/$arch/cuda-libs"
            for name in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10; do
                found="$(find -L "${CUDA_ROOT:?set CUDA_ROOT to the CUDA 13 toolkit}/lib64" -maxdepth 1 -name "$name" | head -n 1)"
                [ -n "$found" ] || { echo "build-bundle.sh: $name not found in $CUDA_ROOT/lib64" >&2; exit 1; }
                cp -L "$found" "$bundle/Contents/$arch/cuda-libs/$name"
            done
        fi
    else
        rm -f "$bundle/Contents/$arch/$engine"
    fi
elif [ "$cuda" = 1 ]; then
    echo "build-bundle.sh: --cuda: no CUDA on this platform" >&2
    exit 2
fi
cp "$here/resources/org.texttovideo.TextToVideo.png" "$bundle/Contents/Resources/"
demo="$root/demo/model"
if [ -f "$demo/model_index.json" ]; then
    rm -rf "$bundle/Contents/Resources/demo-model"
    cp -R "$demo" "$bundle/Contents/Resources/demo-model"
else
    rm -rf "$bundle/Contents/Resources/demo-model"
    echo "build-bundle.sh: warning: $demo has no trained demo model; the bundle has no default model" >&2
fi

if command -v nm >/dev/null && [ "$arch" = Linux-x86-64 ]; then
    for binary in "$bundle/Contents/$arch"/*.ofx "$bundle/Contents/$arch"/*.so; do
        [ -f "$binary" ] || continue
        extra="$(nm -D --defined-only "$binary" | awk '{print $3}' | grep -v '^Ofx' || true)"
        if [ -n "$extra" ]; then
            echo "build-bundle.sh: unexpected exported symbols in $binary:" >&2
            echo "$extra" >&2
            exit 1
        fi
    done
fi
echo "$bundle"
