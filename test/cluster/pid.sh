# cluster_pid DIR NAME: prints the pid of a control-plane process started by up.sh, if it still runs.
# A pid file alone is not trusted: the pid may have been reused, so the process must run our binary.
cluster_pid() {
  local dir=$1 name=$2 pid exe
  pid=$(cat "$dir/pids/$name.pid" 2>/dev/null) || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  case "$exe" in */.cache/bin/"$name") echo "$pid" ;; *) return 1 ;; esac
}
