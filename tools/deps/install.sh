#!/usr/bin/env bash
# Installs the Debian packages kubelab's tests and `make run` need, when they
# are missing. Idempotent and silent when everything is present.
#
#   etcd-server   a real external etcd (/usr/bin/etcd), the store suite's
#                 "etcd-server" target and the 3-member cluster test
#   iproute2      ip netns / veth for node and pod namespaces
#   busybox-static  the busybox test image (one static binary)
#   nftables      the nft command, to inspect and clean up kubelab's tables
#   containerd runc containernetworking-plugins
#                 a real containerd 1.6 with runc and the CNI plugins, the
#                 runtime suite's "containerd" target (conformance/containerd)
set -euo pipefail

packages=(etcd-server iproute2 busybox-static nftables containerd runc containernetworking-plugins)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done
if ((${#missing[@]} > 0)); then
	if [[ $(id -u) -ne 0 ]]; then
		echo "deps: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
		exit 1
	fi
	echo "deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	log=$(mktemp)
	trap 'rm -f "$log"' EXIT
	fail() { cat "$log" >&2; echo "deps: installing ${missing[*]} failed" >&2; exit 1; }
	apt-get update -qq >"$log" 2>&1 || fail
	# etcd-server's and containerd's postinst would start system services
	# where there is an init system; kubelab never uses them (it runs its
	# own containerd with its own state), so a temporary policy-rc.d
	# (when the machine has none) keeps them from starting.
	if [[ ! -e /usr/sbin/policy-rc.d ]]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		trap 'rm -f "$log" /usr/sbin/policy-rc.d' EXIT
	fi
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >>"$log" 2>&1 || fail
fi

if ! command -v go >/dev/null; then
	if [[ -x /usr/local/go/bin/go ]]; then
		echo "deps: add /usr/local/go/bin to PATH" >&2
	else
		echo "deps: Go 1.26 is required (https://go.dev/doc/install)" >&2
	fi
	exit 1
fi
