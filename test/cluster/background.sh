# Sourced by up.sh and node-up.sh: how the local cluster starts its processes and waits for them. Needs $dir (the
# cluster's state directory, with cmd/, logs/ and pids/); the caller defines gave_up WHAT, run when a wait fails.

start() { # name binary args...
  local name=$1
  shift
  # The command is kept so that restart.sh can start the same process again (tests restart the apiserver).
  printf '%q ' "$@" >"$dir/cmd/$name"
  # setsid: the process outlives the shell (or test runner) that started it; down.sh stops it.
  setsid "$@" >>"$dir/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$dir/pids/$name.pid"
}

wait_for() { # what command...: up to two minutes
  local what=$1
  shift
  for _ in $(seq 1 240); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  gave_up "$what"
}
