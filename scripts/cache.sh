# scripts/cache.sh - source it: what a script that builds something once per
# machine and keeps it in the cache needs. The caller defines log() and
# die() first. (scripts/guest-kernel.sh and guest-initramfs.sh still carry
# their own copies: moving them here changes their cache keys, which
# rebuilds the kernel kit once on every machine.)
#
#   cache_root          set $cache: $CVISOR_CACHE, else /var/cache/cvisor if
#                       writable, else ~/.cache/cvisor
#   cache_lock NAME     hold $cache/NAME.lock (fd 9) until exit; two builds
#                       of one thing wait for each other
#   step DESC CMD...    run CMD with its output appended to $buildlog
#   step_trap           on exit: remove $tmp, and after a failed step print
#                       the tail of $buildlog

cache_root() {
	cache=${CVISOR_CACHE:-/var/cache/cvisor}
	if ! mkdir -p "$cache" 2>/dev/null || [ ! -w "$cache" ]; then
		[ -z "${CVISOR_CACHE:-}" ] || die "$cache: not writable (set CVISOR_CACHE to a writable directory)"
		cache=${XDG_CACHE_HOME:-$HOME/.cache}/cvisor
		mkdir -p "$cache"
		log "/var/cache/cvisor not writable, using $cache"
	fi
}

cache_lock() {
	exec 9>"$cache/$1.lock"
	if ! flock -n 9; then
		log "waiting for another build of $1"
		flock 9
	fi
}

current_step=
step() {
	current_step=$1
	shift
	log "$current_step"
	printf '\n=== %s\n' "$current_step" >>"$buildlog"
	"$@" >>"$buildlog" 2>&1 </dev/null
	current_step=
}

step_trap() {
	local rc=$?
	if [ "$rc" -ne 0 ] && [ -n "$current_step" ]; then
		log "error: $current_step failed (exit $rc); last lines of $buildlog:"
		tail -n 40 "$buildlog" >&2
	fi
	rm -rf "${tmp:-}"
}
