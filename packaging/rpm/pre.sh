# rampart %pre: the system user exists before the files it owns (/var/log/rampart) are laid down.
getent group rampart >/dev/null || groupadd --system rampart || exit 1
getent passwd rampart >/dev/null ||
    useradd --system --gid rampart --no-create-home --home-dir /nonexistent \
        --shell /sbin/nologin --comment "Rampart edge reverse proxy" rampart || exit 1
exit 0
