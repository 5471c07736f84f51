#!/usr/bin/env bash
# Installs TextToVideo.ofx.bundle on Linux: installers/linux/install.sh [--prefix DIR | --user]
# [--bundle PATH]. Default DIR /usr/OFX/Plugins; --user: ${XDG_DATA_HOME:-~/.local/share}/OFX/Plugins
# (then add it to OFX_PLUGIN_PATH). --help for details. Never touches the network.
set -euo pipefail
T2V_SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
T2V_PROG="install.sh"
T2V_OS="Linux"
T2V_ARCH_DIR="Linux-x86-64"
T2V_SYSTEM_PREFIX="/usr/OFX/Plugins"
T2V_USER_PREFIX="${XDG_DATA_HOME:-$HOME/.local/share}/OFX/Plugins"
# shellcheck source=../lib/bundle-install.sh
. "$T2V_SCRIPT_DIR/../lib/bundle-install.sh"
t2v_install "$@"
