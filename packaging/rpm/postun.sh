# rampart %postun ($1: 0 = erase, 1 or more = upgrade): let systemd forget the removed unit.
# Never restarts. The `rampart` user stays (Fedora guidelines: packages do not delete users,
# files may still belong to it); rpm keeps a modified rampart.yaml as rampart.yaml.rpmsave.
if [ "$1" -eq 0 ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
