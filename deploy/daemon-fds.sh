# daemon-fds.sh - sourced by kafka-local.sh and pg-local.sh before they start a daemon.
# A lock the caller holds (flock around a benchmark) must not live on in the daemon, or
# every later holder waits for the daemon to stop: fds above 2 are closed before it starts.
close_inherited_fds() {
  local fd
  for fd in /proc/$BASHPID/fd/*; do
    fd=${fd##*/}
    if ((fd > 2)); then eval "exec $fd>&-"; fi
  done 2>/dev/null
}
