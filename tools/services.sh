#!/usr/bin/env bash
# Start RabbitMQ and Redis on 127.0.0.1 if they are down (commands from the machine's docs), and
# restart a RabbitMQ that is up but does not answer: a node out of sockets (832 by default here)
# or stuck accepts TCP yet times out every AMQP handshake and every rabbitmqctl call, and a whole
# test run would then fail on it, test after test.
set -uo pipefail

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

rabbit_answers() {
  timeout 60 rabbitmqctl await_startup >/dev/null 2>&1 &&
    timeout 60 rabbitmq-diagnostics -q check_port_connectivity >/dev/null 2>&1 &&
    timeout 60 rabbitmq-diagnostics -q check_local_alarms >/dev/null 2>&1
}

start_rabbit() {
  rabbitmq-server -detached
  for _ in $(seq 90); do port_open 5672 && break; sleep 1; done
  timeout 120 rabbitmqctl await_startup >/dev/null 2>&1 || true
}

if ! port_open 6379; then
  echo "starting redis"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
if ! port_open 5672; then
  echo "starting rabbitmq"
  start_rabbit
elif ! rabbit_answers; then
  echo "rabbitmq is up but does not answer: restarting it"
  timeout 60 rabbitmqctl stop >/dev/null 2>&1 || pkill -KILL -u rabbitmq -f beam.smp || true
  for _ in $(seq 30); do port_open 5672 || break; sleep 1; done
  start_rabbit
  rabbit_answers || echo "rabbitmq still does not answer after a restart" >&2
fi
exit 0
