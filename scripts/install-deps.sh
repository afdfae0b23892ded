#!/usr/bin/env bash
# Install the Debian 12 packages qat builds and tests with, when any is missing.
# As root it runs apt-get; otherwise it names the missing packages and fails.
set -euo pipefail
# zlib1g-dev: gzip/dictzip text input; dict-gcide: the default English corpus (data.source
# english, /usr/share/dictd/gcide.dict.dz, docs/data.md).
pkgs=(gcc make meson ninja-build pkg-config libdnnl-dev libhdf5-dev libyaml-dev libcmocka-dev zlib1g-dev dict-gcide)
# Optional cross-checks (h5py reads run logs written by qat): installed when asked.
if [ "${QAT_WITH_PYTHON:-0}" = 1 ]; then pkgs+=(python3 python3-h5py python3-numpy); fi
# Slurm for tests/test_slurm_e2e.sh, which starts a private one-node cluster of its own:
# installed with the test set above (make test) unless QAT_WITH_SLURM=0.
if [ "${QAT_WITH_SLURM:-${QAT_WITH_PYTHON:-0}}" = 1 ]; then pkgs+=(munge slurmctld slurmd slurm-client procps); fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "qat: missing Debian packages: ${missing[*]}" >&2
  echo "     install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "qat: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# munge, slurmctld, slurmd and dictd (pulled in by dict-gcide) would start global services at
# install. qat needs none of them running, so while this script installs, Debian's policy-rc.d
# refuses service starts (only on a machine without a policy of its own; removed on exit).
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
