#!/usr/bin/env bash
# Install the Debian 12 packages qat builds and tests with, when any is missing.
# As root it runs apt-get; otherwise it names the missing packages and fails.
set -euo pipefail
# zlib1g-dev: gzip/dictzip text input; dict-gcide: the default English corpus (data.source
# english, /usr/share/dictd/gcide.dict.dz, docs/data.md).
pkgs=(gcc make meson ninja-build pkg-config libdnnl-dev libhdf5-dev libyaml-dev libcmocka-dev zlib1g-dev dict-gcide)
# Optional cross-checks (h5py reads run logs written by qat): installed when asked.
if [ "${QAT_WITH_PYTHON:-0}" = 1 ]; then pkgs+=(python3 python3-h5py python3-numpy); fi
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
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
