# Shared helpers for the scripts: install a tool only when it is missing.

have() { command -v "$1" >/dev/null 2>&1; }

# apt_install PKG... : installs the Debian packages that are not installed yet.
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "== installing ${missing[*]}"
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# rust_target TARGET : adds a rustup target when missing.
rust_target() {
  rustup target list --installed | grep -qx "$1" || rustup target add "$1"
}
