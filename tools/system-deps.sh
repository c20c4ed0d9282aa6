#!/usr/bin/env bash
# Install the Debian packages the test-suite needs, only when missing (idempotent, as root).
set -euo pipefail
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v radosgw >/dev/null || need+=(radosgw ceph-mon ceph-osd)
command -v npm >/dev/null || need+=(npm)
# bench.hosts (python -m bench.soak --scenario hosts): link faults where the kernel has no netem.
command -v iptables >/dev/null || need+=(iptables)
[ -e /usr/include/libnetfilter_queue/libnetfilter_queue.h ] || need+=(libnetfilter-queue-dev)
# A Chinese font, or Chromium draws the zh pages (and their screenshots) as empty boxes.
# WenQuanYi Micro Hei: 1.6 MB download, against 57 MB for fonts-noto-cjk.
[ -n "$(fc-list :lang=zh 2>/dev/null)" ] || need+=(fonts-wqy-microhei)
[ ${#need[@]} -eq 0 ] && exit 0
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
