#!/usr/bin/env bash
# Removes TextToVideo.ofx.bundle on Linux: installers/linux/uninstall.sh [--prefix DIR | --user],
# with the same DIR as the install (default /usr/OFX/Plugins). --help for details.
set -euo pipefail
T2V_SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
T2V_PROG="uninstall.sh"
T2V_OS="Linux"
T2V_ARCH_DIR="Linux-x86-64"
T2V_SYSTEM_PREFIX="/usr/OFX/Plugins"
T2V_USER_PREFIX="${XDG_DATA_HOME:-$HOME/.local/share}/OFX/Plugins"
# shellcheck source=../lib/bundle-install.sh
. "$T2V_SCRIPT_DIR/../lib/bundle-install.sh"
t2v_uninstall "$@"
