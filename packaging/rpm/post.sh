# rampart %post ($1: 1 = first install, 2 or more = upgrade): enable and start on first
# install; on upgrade reload (a graceful upgrade onto the new binary, see ExecReload in
# rampart.service), never restart. Without a running systemd only the unit is enabled.
unit=rampart.service
# The unit's ReadWritePaths= needs it to exist; an admin's own owner/mode is kept. (Made here,
# not shipped: cargo-generate-rpm 0.21.1 cannot package an empty directory.)
if [ ! -d /var/log/rampart ]; then
    install -d -o rampart -g rampart -m 0750 /var/log/rampart || exit 1
fi
if [ "$1" -eq 1 ]; then
    if command -v systemctl >/dev/null 2>&1; then
        systemctl --no-reload enable "$unit" >/dev/null 2>&1 || true
    fi
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload >/dev/null 2>&1 || true
        systemctl start "$unit" ||
            echo "rampart: the service did not start; see: journalctl -u rampart" >&2
    fi
elif [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
    if systemctl --quiet is-active "$unit"; then
        systemctl reload "$unit" ||
            echo "rampart: reload failed, the previous process still serves; see: journalctl -u rampart" >&2
    fi
fi
exit 0
