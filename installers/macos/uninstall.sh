#!/usr/bin/env bash
# Removes TextToVideo.ofx.bundle on macOS: installers/macos/uninstall.sh [--prefix DIR | --user],
# with the same DIR as the install (default /Library/OFX/Plugins). --help for details.
set -euo pipefail
T2V_SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
T2V_PROG="uninstall.sh"
T2V_OS="macOS"
T2V_ARCH_DIR="MacOS"
T2V_SYSTEM_PREFIX="/Library/OFX/Plugins"
T2V_USER_PREFIX="$HOME/Library/OFX/Plugins"
# shellcheck source=../lib/bundle-install.sh
. "$T2V_SCRIPT_DIR/../lib/bundle-install.sh"
t2v_uninstall "$@"
