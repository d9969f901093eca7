#!/usr/bin/env bash
# Builds tunmcast in release mode and installs it: the binaries, their man pages and shell
# completions (generated from the same clap definitions as --help), the systemd unit and an
# example configuration.
#
#   scripts/install.sh                      # into /usr/local (as root, or through sudo)
#   PREFIX=/usr scripts/install.sh          # into /usr
#   DESTDIR=/tmp/stage scripts/install.sh   # staged, for packaging (no root needed)
#
# Installs: $PREFIX/sbin/tunmcastd, $PREFIX/bin/{tunmcastctl,mcquerier,mcflood},
# $PREFIX/share/man/man{1,8}/, bash / zsh / fish completions under $PREFIX/share,
# $PREFIX/lib/systemd/system/tunmcastd@.service, /etc/tunmcast/tunmcastd.toml.example.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/lib.sh

PREFIX=${PREFIX:-/usr/local}
DESTDIR=${DESTDIR:-}
SYSCONFDIR=${SYSCONFDIR:-/etc}
root=$DESTDIR$PREFIX

# CARGO_PROFILE=dev installs the debug build (the tests do, to reuse what they built).
profile=${CARGO_PROFILE:-release}
ensure_rust
say "cargo build --profile $profile --workspace --bins"
cargo build --profile "$profile" --workspace --bins
bin=${CARGO_TARGET_DIR:-target}/$([[ $profile == dev ]] && echo debug || echo "$profile")

# Root is needed for the system directories; a staging DESTDIR of one's own needs nothing.
install_cmd() {
    if [[ $EUID -eq 0 || -n $DESTDIR ]]; then "$@"; else as_root "$@"; fi
}

say "installing into ${DESTDIR:+$DESTDIR}$PREFIX"
install_cmd install -d "$root/sbin" "$root/bin" "$root/share/man/man1" "$root/share/man/man8" \
    "$root/share/bash-completion/completions" "$root/share/zsh/site-functions" \
    "$root/share/fish/vendor_completions.d" "$root/lib/systemd/system" "$DESTDIR$SYSCONFDIR/tunmcast"
install_cmd install -m 755 "$bin/tunmcastd" "$root/sbin/"
for tool in tunmcastctl mcquerier mcflood; do
    install_cmd install -m 755 "$bin/$tool" "$root/bin/"
done

generated=$(mktemp -d)
trap 'rm -rf "$generated"' EXIT
for tool in tunmcastd tunmcastctl mcquerier mcflood; do
    section=1
    [[ $tool == tunmcastd ]] && section=8
    "$bin/$tool" --generate man >"$generated/$tool.$section"
    "$bin/$tool" --generate bash >"$generated/$tool.bash"
    "$bin/$tool" --generate zsh >"$generated/_$tool"
    "$bin/$tool" --generate fish >"$generated/$tool.fish"
    install_cmd install -m 644 "$generated/$tool.$section" "$root/share/man/man$section/"
    install_cmd install -m 644 "$generated/$tool.bash" "$root/share/bash-completion/completions/$tool"
    install_cmd install -m 644 "$generated/_$tool" "$root/share/zsh/site-functions/"
    install_cmd install -m 644 "$generated/$tool.fish" "$root/share/fish/vendor_completions.d/"
done

sed "s|@SBINDIR@|$PREFIX/sbin|g" packaging/systemd/tunmcastd@.service >"$generated/tunmcastd@.service"
install_cmd install -m 644 "$generated/tunmcastd@.service" "$root/lib/systemd/system/"
install_cmd install -m 644 packaging/tunmcastd.toml.example "$DESTDIR$SYSCONFDIR/tunmcast/"

if [[ -z $DESTDIR ]] && command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    as_root systemctl daemon-reload
fi
say "installed; try: man tunmcastd, or systemctl enable --now tunmcastd@tun0 after writing $SYSCONFDIR/tunmcast/tun0.toml"
