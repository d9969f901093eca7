# shellcheck shell=bash
# Shared by scripts/test.sh and scripts/demo.sh (sourced, not run).

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs a command as root: directly if we are root, else through sudo.
as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null; then
        sudo "$@"
    else
        die "need root for: $* (run as root or install sudo)"
    fi
}

# tool_present PROBE: a command on PATH (or in /usr/sbin, /sbin), or an executable absolute path.
tool_present() {
    local probe=$1
    if [[ $probe == /* ]]; then
        [[ -x $probe ]]
    else
        command -v "$probe" >/dev/null || [[ -x /usr/sbin/$probe || -x /sbin/$probe ]]
    fi
}

# ensure_packages PKG:PROBE...: installs every Debian package PKG whose PROBE (a command name
# or an absolute path) is missing (apt-get update runs only if something is), then checks every
# PROBE again: lists what is present in one line, or fails with one line naming the package
# that could not be installed.
ensure_packages() {
    local missing=() spec pkg probe present=()
    for spec in "$@"; do
        pkg=${spec%%:*} probe=${spec#*:}
        tool_present "$probe" || missing+=("$pkg")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        command -v apt-get >/dev/null ||
            die "missing ${missing[*]}, and this is not a Debian-like system: install them by hand"
        say "installing ${missing[*]}"
        # tshark's package asks whether non-root users may capture: answer no, quietly.
        echo 'wireshark-common wireshark-common/install-setuid boolean false' |
            as_root debconf-set-selections
        as_root apt-get update || true
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" || true
    fi
    for spec in "$@"; do
        pkg=${spec%%:*} probe=${spec#*:}
        tool_present "$probe" ||
            die "${probe##*/} is missing and the Debian package $pkg could not be installed (apt-get install $pkg)"
        present+=("${probe##*/} ($pkg)")
    done
    echo "present: ${present[*]}"
}

# ensure_rust: cargo, rustfmt and clippy on PATH (rustup's default place is tried too).
ensure_rust() {
    if ! command -v cargo >/dev/null && [[ -x $HOME/.cargo/bin/cargo ]]; then
        export PATH=$HOME/.cargo/bin:$PATH
    fi
    command -v cargo >/dev/null ||
        die "no Rust toolchain: install stable Rust with rustup (https://rustup.rs):
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y && . \"\$HOME/.cargo/env\""
    local component
    for component in fmt clippy; do
        if ! cargo "$component" --version >/dev/null 2>&1; then
            command -v rustup >/dev/null || die "cargo $component is missing (rustup component add rustfmt clippy)"
            rustup component add rustfmt clippy
        fi
    done
}

# ensure_python_module MODULE PACKAGE DEBIAN_PACKAGE: makes `python3 -c "import MODULE"` work:
# from PyPI with pip when python3 has pip, else from Debian's package. Used for the real
# Prometheus text parser the metrics test checks against.
ensure_python_module() {
    local module=$1 package=$2 debian=$3
    python3 -c "import $module" 2>/dev/null && return 0
    say "installing $package for python3"
    if python3 -m pip --version >/dev/null 2>&1; then
        as_root python3 -m pip install --quiet "$package" ||
            as_root python3 -m pip install --quiet --break-system-packages "$package" || true
    fi
    python3 -c "import $module" 2>/dev/null && return 0
    command -v apt-get >/dev/null || die "cannot install $package for python3: install it by hand"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "$debian"
    python3 -c "import $module" 2>/dev/null || die "python3 still cannot import $module"
}

# kernel_features: one line per kernel feature a test may need that no script can add, and
# whether this kernel has it. The tests check for themselves (tests/src/kernel.rs) and are "not
# run" without it; this is the summary at the start.
kernel_features() {
    local feature
    say "kernel features"
    for feature in "CONFIG_IP_MROUTE:/proc/net/ip_mr_vif:FRR pimd as an IGMP querier" \
        "CONFIG_IPV6_MROUTE:/proc/net/ip6_mr_vif:FRR pim6d as an MLD querier (no test uses it yet)"; do
        IFS=: read -r option file who <<<"$feature"
        if [[ -e $file ]]; then
            echo "  $option: yes ($who)"
        else
            echo "  $option: no, so the tests of $who are not run"
        fi
    done
    # Every test needs these; without them the suite fails, it does not skip.
    [[ -c /dev/net/tun ]] || die "/dev/net/tun is missing: this kernel has no TUN/TAP (CONFIG_TUN)"
    echo "  CONFIG_TUN: yes"
}

# Makes network namespace $1 for a benchmark: lo up, and a TUN tun0 whose kernel side is
# 10.99.0.1/24 (and the link-local $2, without DAD, if given).
bench_tun_namespace() {
    local ns=$1 ll=${2:-}
    ip netns add "$ns"
    ip -n "$ns" link set lo up
    ip -n "$ns" tuntap add dev tun0 mode tun
    ip -n "$ns" link set tun0 addrgenmode none
    ip -n "$ns" addr add 10.99.0.1/24 dev tun0
    if [ -n "$ll" ]; then ip -n "$ns" -6 addr add "$ll/64" dev tun0 nodad; fi
    ip -n "$ns" link set tun0 up
}
