# Shared by installers/linux and installers/macos: install or remove TextToVideo.ofx.bundle.
# Sourced, not run. The caller sets:
#   T2V_OS            "Linux" or "macOS" (for messages)
#   T2V_ARCH_DIR      the bundle's binary folder: Linux-x86-64 or MacOS
#   T2V_SYSTEM_PREFIX the host's default plugin folder (/usr/OFX/Plugins, /Library/OFX/Plugins)
#   T2V_USER_PREFIX   the per-user folder used with --user
#   T2V_SCRIPT_DIR    the folder of the calling script
# Nothing here touches the network: it copies and removes one folder.

BUNDLE_NAME="TextToVideo.ofx.bundle"

t2v_die() {
    echo "$T2V_PROG: error: $*" >&2
    exit 1
}

t2v_usage_install() {
    cat <<USAGE
Usage: $T2V_PROG [--prefix DIR | --user] [--bundle PATH]

Installs the Text to Video OFX plugin ($BUNDLE_NAME) for Nuke, DaVinci Resolve and Natron
on $T2V_OS by copying the whole bundle folder (binary, icon, and the demo model when built
with it) into DIR.

  --prefix DIR   plugin folder (default: $T2V_SYSTEM_PREFIX, searched by every OFX host;
                 usually needs sudo)
  --user         install into $T2V_USER_PREFIX instead (no sudo); hosts find it
                 only when that folder is listed in OFX_PLUGIN_PATH
  --bundle PATH  the bundle to install (default: a $BUNDLE_NAME next to this script,
                 else target/bundles/$BUNDLE_NAME in the source tree, as built by
                 installers/build.sh)

Running it again replaces an earlier install (same result). Remove it with uninstall.sh.
USAGE
}

t2v_usage_uninstall() {
    cat <<USAGE
Usage: $T2V_PROG [--prefix DIR | --user]

Removes DIR/$BUNDLE_NAME (default DIR: $T2V_SYSTEM_PREFIX; --user: $T2V_USER_PREFIX).
Nothing else is touched: the clip cache and the log stay (see docs/troubleshooting.md).
Running it when nothing is installed is not an error.
USAGE
}

# Parses the arguments into T2V_PREFIX, T2V_BUNDLE and T2V_USER_MODE.
t2v_parse_args() {
    local mode="$1"
    shift
    T2V_PREFIX=""
    T2V_BUNDLE=""
    T2V_USER_MODE=0
    while [ $# -gt 0 ]; do
        case "$1" in
            --prefix)
                [ $# -ge 2 ] || t2v_die "--prefix needs a folder"
                T2V_PREFIX="$2"; shift 2 ;;
            --prefix=*) T2V_PREFIX="${1#--prefix=}"; shift ;;
            --user) T2V_USER_MODE=1; shift ;;
            --bundle)
                [ "$mode" = install ] || t2v_die "unknown argument $1 (see --help)"
                [ $# -ge 2 ] || t2v_die "--bundle needs a path"
                T2V_BUNDLE="$2"; shift 2 ;;
            --bundle=*)
                [ "$mode" = install ] || t2v_die "unknown argument $1 (see --help)"
                T2V_BUNDLE="${1#--bundle=}"; shift ;;
            -h|--help)
                if [ "$mode" = install ]; then t2v_usage_install; else t2v_usage_uninstall; fi
                exit 0 ;;
            *) t2v_die "unknown argument $1 (see --help)" ;;
        esac
    done
    if [ -n "$T2V_PREFIX" ] && [ "$T2V_USER_MODE" = 1 ]; then
        t2v_die "use either --prefix or --user, not both"
    fi
    if [ "$T2V_USER_MODE" = 1 ]; then
        T2V_PREFIX="$T2V_USER_PREFIX"
    elif [ -z "$T2V_PREFIX" ]; then
        T2V_PREFIX="$T2V_SYSTEM_PREFIX"
    fi
    # Strip trailing slashes (but keep "/").
    while [ "${#T2V_PREFIX}" -gt 1 ] && [ "${T2V_PREFIX%/}" != "$T2V_PREFIX" ]; do
        T2V_PREFIX="${T2V_PREFIX%/}"
    done
}

# Is DIR one of the folders in OFX_PLUGIN_PATH?
t2v_on_plugin_path() {
    local dir="$1" entry
    local IFS=:
    for entry in ${OFX_PLUGIN_PATH:-}; do
        [ "${entry%/}" = "$dir" ] && return 0
    done
    return 1
}

t2v_install() {
    t2v_parse_args install "$@"
    local bundle="$T2V_BUNDLE"
    if [ -z "$bundle" ]; then
        for candidate in "$T2V_SCRIPT_DIR/$BUNDLE_NAME" "$T2V_SCRIPT_DIR/../$BUNDLE_NAME" \
            "$T2V_SCRIPT_DIR/../../target/bundles/$BUNDLE_NAME"; do
            if [ -d "$candidate" ]; then bundle="$candidate"; break; fi
        done
        [ -n "$bundle" ] || t2v_die "no $BUNDLE_NAME found next to this script or in target/bundles; build it first with installers/build.sh, or pass --bundle PATH"
    fi
    [ -d "$bundle" ] || t2v_die "$bundle is not a folder; pass the $BUNDLE_NAME folder built by installers/build.sh"
    bundle="$(cd "$bundle" && pwd)"
    [ "$(basename "$bundle")" = "$BUNDLE_NAME" ] || t2v_die "$bundle: expected a folder named $BUNDLE_NAME"
    local binary="$bundle/Contents/$T2V_ARCH_DIR/TextToVideo.ofx"
    [ -f "$binary" ] || t2v_die "$bundle has no Contents/$T2V_ARCH_DIR/TextToVideo.ofx: it was not built for $T2V_OS (run installers/build.sh on this machine)"

    if ! mkdir -p "$T2V_PREFIX" 2>/dev/null || [ ! -w "$T2V_PREFIX" ]; then
        t2v_die "cannot write to $T2V_PREFIX: run with sudo, or install for yourself only with --user"
    fi
    local dest="$T2V_PREFIX/$BUNDLE_NAME"
    if [ "$(cd "$T2V_PREFIX" && pwd)/$BUNDLE_NAME" = "$bundle" ]; then
        echo "$T2V_PROG: $bundle is already installed there (source and destination are the same folder)"
        return 0
    fi
    # Copy next to the destination, then swap, so that a host starting meanwhile never sees a
    # half-copied bundle.
    T2V_TMP="$T2V_PREFIX/.$BUNDLE_NAME.installing.$$"
    local tmp="$T2V_TMP"
    rm -rf "$tmp"
    trap 'rm -rf "$T2V_TMP"' EXIT
    cp -R "$bundle" "$tmp" || t2v_die "copying $bundle to $T2V_PREFIX failed"
    local replaced=0
    if [ -e "$dest" ]; then
        replaced=1
        rm -rf "$dest" || t2v_die "cannot remove the earlier install $dest"
    fi
    mv "$tmp" "$dest" || t2v_die "cannot move the new bundle into $dest"
    trap - EXIT
    chmod -R a+rX "$dest" 2>/dev/null || true
    if [ "$T2V_OS" = macOS ] && command -v xattr >/dev/null 2>&1; then
        # A bundle unpacked from a download is quarantined; hosts then refuse to load it.
        xattr -dr com.apple.quarantine "$dest" 2>/dev/null || true
    fi

    if [ "$replaced" = 1 ]; then
        echo "$T2V_PROG: replaced the earlier install: $dest"
    else
        echo "$T2V_PROG: installed $dest"
    fi
    if [ -d "$dest/Contents/Resources/demo-model" ]; then
        echo "$T2V_PROG: the bundle includes the demo model (used while Model Path is empty)"
    fi
    if [ "$T2V_PREFIX" != "$T2V_SYSTEM_PREFIX" ] && ! t2v_on_plugin_path "$T2V_PREFIX"; then
        echo "$T2V_PROG: $T2V_PREFIX is not a default OFX folder: add it to OFX_PLUGIN_PATH before starting the host, e.g."
        echo "    export OFX_PLUGIN_PATH=\"$T2V_PREFIX\${OFX_PLUGIN_PATH:+:\$OFX_PLUGIN_PATH}\""
        echo "  (in ~/.profile, or the environment of the host's launcher / render farm)"
    fi
    echo "$T2V_PROG: restart the host; the node appears as AI > Text to Video (Resolve: Effects > OpenFX generators; enable OFX plugins in Preferences)"
}

t2v_uninstall() {
    t2v_parse_args uninstall "$@"
    local dest="$T2V_PREFIX/$BUNDLE_NAME"
    # Leftovers of an interrupted install.
    rm -rf "$T2V_PREFIX/.$BUNDLE_NAME.installing."* 2>/dev/null || true
    if [ ! -e "$dest" ]; then
        echo "$T2V_PROG: nothing to remove: $dest is not there"
        return 0
    fi
    [ -d "$dest/Contents" ] || t2v_die "$dest does not look like an OFX bundle (no Contents/); not removing it"
    rm -rf "$dest" || t2v_die "cannot remove $dest: run with sudo, or pass the --prefix / --user it was installed with"
    echo "$T2V_PROG: removed $dest"
    echo "$T2V_PROG: the clip cache and plugin log were left in place (see docs/troubleshooting.md)"
}
