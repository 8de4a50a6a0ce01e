#!/usr/bin/env bash
# Make sure Redis answers on 127.0.0.1:6379 (integration tests use it as broker and channel
# layer); start it if it is installed but stopped; fail loudly otherwise.
set -u
ping() { python3 - <<'PY'
import socket, sys
try:
    with socket.create_connection(("127.0.0.1", 6379), timeout=2) as s:
        s.sendall(b"PING\r\n")
        sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)
except OSError:
    sys.exit(1)
PY
}
ping && exit 0
echo "Redis is not answering on 127.0.0.1:6379; trying to start it..." >&2
if ! command -v redis-server >/dev/null; then
  (apt-get update -qq && apt-get install -y -qq redis-server) >&2 || true
fi
if command -v redis-server >/dev/null; then
  mkdir -p /var/lib/redis /var/log/redis 2>/dev/null
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/tokfeed-tests.log >&2
  for _ in 1 2 3 4 5 6 7 8 9 10; do ping && exit 0; sleep 0.5; done
fi
echo "ERROR: Redis is required on 127.0.0.1:6379 for the integration tests and could not be started." >&2
exit 1
