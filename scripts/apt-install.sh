# Sourced by install-r.sh and install-chromium.sh (not run on its own).
# apt_install WHAT_SKIPS PACKAGE...: install Debian packages as root or with password-less
# sudo; where neither is possible, say what will skip and how to install, and return 1.
apt_install() {
    local skips=$1
    shift
    local sudo_cmd=()
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        if command -v sudo >/dev/null && command -v apt-get >/dev/null && sudo -n true 2>/dev/null; then
            sudo_cmd=(sudo -n)
        else
            echo "Cannot install $* here; $skips will skip."
            echo "Install it yourself, e.g.: sudo apt-get install $*"
            return 1
        fi
    fi
    echo "Installing $* (Debian packages) ..."
    export DEBIAN_FRONTEND=noninteractive
    "${sudo_cmd[@]}" apt-get update -qq
    "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
