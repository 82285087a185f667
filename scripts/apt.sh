# scripts/apt.sh - source it. apt_need PKG...: install the Debian packages
# that are missing, quietly and with no stdin (CI has none), as root or
# through `sudo -n`. Returns non-zero with one line on stderr if it cannot.
apt_updated=0

apt_installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'
}

# apt_update: `apt-get update`, once per run.
apt_update() {
	local sudo=
	[ "$apt_updated" = 1 ] && return 0
	[ "$(id -u)" -eq 0 ] || sudo="sudo -n"
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null >/dev/null || return
	apt_updated=1
}

apt_need() {
	local p sudo= missing=()
	for p in "$@"; do
		apt_installed "$p" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		if ! command -v sudo >/dev/null; then
			echo "apt: not root and no sudo: cannot install ${missing[*]}" >&2
			return 1
		fi
		sudo="sudo -n"
	fi
	echo "apt: installing ${missing[*]}" >&2
	apt_update || return
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" </dev/null >/dev/null
}
