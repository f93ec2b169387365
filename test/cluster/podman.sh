# Sourced by build-images.sh and load-images.sh: podman as this machine needs it. No systemd and cgroup v1 here:
# cgroupfs, events kept in a file, and Debian's runc (its crun refuses this hybrid cgroup layout).
podman() { command podman --runtime /usr/sbin/runc --cgroup-manager cgroupfs --events-backend file "$@"; }
