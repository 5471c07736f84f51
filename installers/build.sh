#!/usr/bin/env bash
# Builds TextToVideo.ofx.bundle for the machine this runs on:
#
#   installers/build.sh [--out DIR] [--cuda]          (default DIR: target/bundles)
#
# - Linux: plugin/build-bundle.sh (Contents/Linux-x86-64/TextToVideo.ofx, Resources/ with the
#   icon and, once trained, the demo model).
# - macOS: a universal binary. Builds the plugin for x86_64-apple-darwin and
#   aarch64-apple-darwin (rustup target add both first), joins them with
#   `lipo -create` into Contents/MacOS/TextToVideo.ofx, writes Contents/Info.plist, copies
#   Resources/, and signs the bundle ad hoc (`codesign --sign -`). --cuda is not available.
# - Windows: run installers/windows/build.ps1 from PowerShell (Contents/Win64/TextToVideo.ofx);
#   from Git Bash / MSYS this script delegates to plugin/build-bundle.sh, which does the same.
#
# Then install with installers/<os>/install.sh (or install.ps1). Never touches the network
# beyond what cargo itself does to fetch crates.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

case "$(uname -s)" in
    Linux|MINGW*|MSYS*|CYGWIN*)
        exec "$root/plugin/build-bundle.sh" "$@" ;;
    Darwin) ;;
    *) echo "build.sh: unsupported OS $(uname -s): OFX bundles are built for Linux, macOS and Windows" >&2; exit 2 ;;
esac

out="$root/target/bundles"
while [ $# -gt 0 ]; do
    case "$1" in
        --out) out="$2"; shift 2 ;;
        --out=*) out="${1#--out=}"; shift ;;
        --cuda) echo "build.sh: --cuda: there is no CUDA on macOS; build without it" >&2; exit 2 ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "build.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

cargo="${CARGO:-cargo}"
target="${CARGO_TARGET_DIR:-$root/target}"
slices=()
for triple in x86_64-apple-darwin aarch64-apple-darwin; do
    "$cargo" build --release -p t2v-ofx-plugin --target "$triple" --manifest-path "$root/Cargo.toml"
    slices+=("$target/$triple/release/libtext_to_video.dylib")
done

bundle="$out/TextToVideo.ofx.bundle"
mkdir -p "$bundle/Contents/MacOS" "$bundle/Contents/Resources"
tmp="$bundle/Contents/MacOS/.TextToVideo.ofx.$$"
lipo -create -output "$tmp" "${slices[@]}"
mv -f "$tmp" "$bundle/Contents/MacOS/TextToVideo.ofx"
version="$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)"
cat > "$bundle/Contents/Info.plist" <<PLIST
<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
    <key>CFBundleDevelopmentRegion</key><string>English</string>
    <key>CFBundleExecutable</key><string>TextToVideo.ofx</string>
    <key>CFBundleIdentifier</key><string>org.texttovideo.TextToVideo</string>
    <key>CFBundleInfoDictionaryVersion</key><string>6.0</string>
    <key>CFBundleName</key><string>TextToVideo</string>
    <key>CFBundlePackageType</key><string>BNDL</string>
    <key>CFBundleShortVersionString</key><string>${version}</string>
    <key>CFBundleVersion</key><string>${version}</string>
</dict>
</plist>
PLIST
cp "$root/plugin/resources/org.texttovideo.TextToVideo.png" "$bundle/Contents/Resources/"
demo="$root/demo/model"
if [ -f "$demo/model_index.json" ]; then
    rm -rf "$bundle/Contents/Resources/demo-model"
    cp -R "$demo" "$bundle/Contents/Resources/demo-model"
else
    echo "build.sh: warning: $demo has no trained demo model; the bundle has no default model" >&2
fi
if command -v codesign >/dev/null; then
    codesign --force --deep --sign - "$bundle"
fi
lipo -info "$bundle/Contents/MacOS/TextToVideo.ofx" >&2
echo "$bundle"
