#!/usr/bin/env bash
# Builds the plugin bundle with its CUDA engine (plugin/build-bundle.sh --cuda; needs the CUDA
# toolchain, see docs/dev/cuda.md) and checks it where there is no NVIDIA driver, as in CI:
#   - TextToVideo.ofx (the CPU build the host loads) does not need libcuda, the engine does;
#   - the bundle loads in the test host and renders a clip on the CPU, and the plugin's log says
#     why the CUDA engine was not used.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bundle="$(bash plugin/build-bundle.sh --cuda --out target/bundles-cuda | tail -n 1)"
binaries="$bundle/Contents/Linux-x86-64"

needs_libcuda() {
    if command -v readelf >/dev/null; then
        readelf -d "$1" | grep NEEDED | grep -q 'libcuda\.so'
    else
        objdump -p "$1" | grep NEEDED | grep -q 'libcuda\.so'
    fi
}
if needs_libcuda "$binaries/TextToVideo.ofx"; then
    echo "check-cuda-bundle: TextToVideo.ofx needs libcuda: it would not load without the driver" >&2
    exit 1
fi
if ! needs_libcuda "$binaries/TextToVideo-cuda.so"; then
    echo "check-cuda-bundle: TextToVideo-cuda.so is not a CUDA build" >&2
    exit 1
fi

cargo build --release -p ofx-test-host --bin ofx-render
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
T2V_LOG="$scratch/plugin.log" T2V_CACHE_DIR="$scratch/cache" \
    target/release/ofx-render --bundle "$bundle" --background \
    --set model=models/tests/fixtures/tiny-diffusers --set resolution=custom \
    --set width=64 --set height=64 --set frames=5 --set steps=2 --set "prompt=a kite" \
    --frames 1-5 --output "$scratch/frame.%04d.png"
for f in 1 2 3 4 5; do
    test -s "$scratch/frame.000$f.png" || { echo "check-cuda-bundle: frame $f missing" >&2; exit 1; }
done
if ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1'; then
    grep -q "engine: CPU (no NVIDIA driver found)" "$scratch/plugin.log" || {
        echo "check-cuda-bundle: the log does not say why the CPU engine serves the node:" >&2
        cat "$scratch/plugin.log" >&2
        exit 1
    }
else
    grep -q "engine: CUDA" "$scratch/plugin.log"
fi
echo "CUDA bundle: TextToVideo.ofx loads without the driver and renders on the CPU; the engine is a CUDA build"
