#!/bin/bash
# gitserver/start.sh — runs the integration test git server (see ../lib.sh) for a
# test program that cannot source lib.sh itself (the cmocka tests, via popen).
#
#   start.sh [--silent] [--parent PID]
#
# Prints KEY=VALUE lines (URL, PORT, CA, ROOT, LOG, USER, PASS, BEARER, MTLS_PORT, CLIENT_CERT,
# CLIENT_KEY, SILENT_PORT, SILENT_TLS_PORT, TMP, PID) and then READY, and keeps everything running until it gets SIGTERM (kill PID)
# or until the parent process PID exits. Everything it started is stopped and its
# temporary directory removed when it ends.
. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

parent=""
silent=0
endless=0
while [ $# -gt 0 ]; do
	case $1 in
	--parent) parent=$2; shift 2 ;;
	--silent) silent=1; shift ;;
	--endless) endless=$2; shift 2 ;;
	*) echo "usage: start.sh [--silent] [--endless MIB] [--parent PID]" >&2; exit 2 ;;
	esac
done

tm_git_server_start || exit 1
echo "URL=$TM_GIT_URL"
echo "PORT=$TM_GIT_PORT"
echo "CA=$TM_GIT_CA"
echo "ROOT=$TM_GIT_ROOT"
echo "LOG=$TM_GIT_LOG"
echo "USER=$TM_GIT_USER"
echo "PASS=$TM_GIT_PASS"
echo "TMP=$TM_TMP"
echo "BEARER=$TM_GIT_BEARER"
echo "MTLS_PORT=$TM_GIT_MTLS_PORT"
echo "CLIENT_CERT=$TM_GIT_CLIENT_CERT"
echo "CLIENT_KEY=$TM_GIT_CLIENT_KEY"
if [ "$silent" = 1 ]; then
	tm_silent_start tcp || exit 1
	echo "SILENT_PORT=$TM_SILENT_PORT"
	tm_silent_start tls || exit 1
	echo "SILENT_TLS_PORT=$TM_SILENT_PORT"
fi
if [ "$endless" != 0 ]; then
	tm_endless_make "$endless" || exit 1
fi
echo "PID=$$"
echo "READY"
exec >/dev/null
trap 'exit 0' TERM INT
while :; do
	if [ -n "$parent" ] && ! kill -0 "$parent" 2>/dev/null; then
		exit 0
	fi
	sleep 0.3 &
	wait $!
done
