#!/usr/bin/env bash
# Installs TextToVideo.ofx.bundle on macOS: installers/macos/install.sh [--prefix DIR | --user]
# [--bundle PATH]. Default DIR /Library/OFX/Plugins; --user: ~/Library/OFX/Plugins (then add it
# to OFX_PLUGIN_PATH). Removes the download quarantine flag from the copy. --help for details.
# Never touches the network.
set -euo pipefail
T2V_SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
T2V_PROG="install.sh"
T2V_OS="macOS"
T2V_ARCH_DIR="MacOS"
T2V_SYSTEM_PREFIX="/Library/OFX/Plugins"
T2V_USER_PREFIX="$HOME/Library/OFX/Plugins"
# shellcheck source=../lib/bundle-install.sh
. "$T2V_SCRIPT_DIR/../lib/bundle-install.sh"
t2v_install "$@"
