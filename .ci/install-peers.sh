#!/usr/bin/env bash
# Installs the real XMPP servers the end-to-end tests start as private instances:
# Prosody 0.12 (+ mod_cloud_notify from prosody-modules) and ejabberd 23.01 (mod_push), from Debian 12.
# Idempotent; run as root. The tests never use the system services: Debian starts them on install, so
# this script prevents that (policy-rc.d) and makes sure nothing listens on 5222/5269/5280/5347 afterwards.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "install-peers.sh: must run as root" >&2
    exit 1
fi

packages=(prosody prosody-modules lua-unbound ejabberd procps)

have_all() {
    local installed
    installed=$(dpkg-query -W -f='${Status}\n' "${packages[@]}" 2>/dev/null | grep -c 'install ok installed' || true)
    [ "$installed" -eq "${#packages[@]}" ] &&
    [ -f /usr/lib/prosody/modules/mod_cloud_notify/mod_cloud_notify.lua ] &&
    command -v setpriv >/dev/null 2>&1 &&
    command -v pgrep >/dev/null 2>&1
}

stop_system_services() {
    # Whatever the packages may have started (they should not have: policy-rc.d), stop it and keep it off.
    for svc in prosody ejabberd; do
        if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
            systemctl stop "$svc" >/dev/null 2>&1 || true
            systemctl disable "$svc" >/dev/null 2>&1 || true
        fi
        if [ -x "/etc/init.d/$svc" ]; then
            "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
        fi
        if command -v update-rc.d >/dev/null 2>&1; then
            update-rc.d "$svc" disable >/dev/null 2>&1 || true
        fi
    done
    # The system ejabberd node (ejabberd@localhost), if it was started anyway.
    if pgrep -u ejabberd -f 'beam.*ejabberd@' >/dev/null 2>&1; then
        su -s /bin/sh ejabberd -c 'ejabberdctl stop' >/dev/null 2>&1 || true
    fi
    # Debian's ejabberd postinst leaves an epmd listening on 0.0.0.0:4369. The test instances run without
    # Erlang distribution and need no epmd; stop it unless some Erlang node is registered with it.
    if command -v epmd >/dev/null 2>&1 && ! epmd -names 2>/dev/null | grep -q '^name '; then
        epmd -kill >/dev/null 2>&1 || true
    fi
}

if have_all; then
    echo "install-peers.sh: prosody, prosody-modules and ejabberd already installed"
    stop_system_services
    exit 0
fi

start=$(date +%s)

# Keep Debian's maintainer scripts from starting the services: invoke-rc.d asks policy-rc.d first.
created_policy=0
if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    created_policy=1
fi
cleanup() {
    if [ "$created_policy" -eq 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends "${packages[@]}"; then
    # A fresh machine may have no package lists yet: update once and retry.
    apt-get update
    apt-get install -y --no-install-recommends "${packages[@]}"
fi

stop_system_services

end=$(date +%s)
echo "install-peers.sh: installed in $((end - start)) s"
prosodyctl about 2>/dev/null | sed -n '1,3p' || true
dpkg-query -W -f='${Package} ${Version}\n' prosody prosody-modules ejabberd
