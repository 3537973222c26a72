#!/usr/bin/env bash
# Installs the reader rules and blacklists on a device (a technician's provisioning step).
# Usage: sudo hardware/install.sh [--root DIR]   (--root for a staging image)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=""
if [ "${1:-}" = "--root" ]; then root=$2; fi
install -D -m 0644 "$here/udev/60-kyukyu-nfc-readers.rules" "$root/etc/udev/rules.d/60-kyukyu-nfc-readers.rules"
install -D -m 0644 "$here/modprobe/kyukyu-nfc-blacklist.conf" "$root/etc/modprobe.d/kyukyu-nfc-blacklist.conf"
if [ -z "$root" ] && command -v udevadm >/dev/null 2>&1; then
  udevadm control --reload-rules || true
  udevadm trigger --subsystem-match=usb || true
fi
echo "installed reader rules and kernel module blacklist${root:+ under $root}"
