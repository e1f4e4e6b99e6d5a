# rampart %preun ($1: 0 = erase, 1 or more = upgrade): stop and disable on erase only; an
# upgrade leaves the service running (the new %post has already reloaded it).
unit=rampart.service
if [ "$1" -eq 0 ]; then
    if [ -d /run/systemd/system ]; then
        systemctl stop "$unit" >/dev/null 2>&1 || true
    fi
    if command -v systemctl >/dev/null 2>&1; then
        systemctl --no-reload disable "$unit" >/dev/null 2>&1 || true
    fi
fi
exit 0
