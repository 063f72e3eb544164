#!/usr/bin/env python
"""Tutorial 4, "Routing" -- a subscriber.

Prints the log messages of the severities given on the command line.
Run:  python receive_logs_direct.py info warning error   (stop it with CTRL+C)
"""
import os
import sys

import pika

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")


def on_log(channel, method, properties, body):
    print(" [x] %r:%r" % (method.routing_key, body))


def main():
    severities = sys.argv[1:]
    if not severities:
        sys.stderr.write("Usage: %s [info] [warning] [error]\n" % sys.argv[0])
        sys.exit(1)

    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()

    channel.exchange_declare(exchange="direct_logs", exchange_type="direct")

    result = channel.queue_declare(queue="", exclusive=True)
    queue_name = result.method.queue

    # One binding per severity: a direct exchange delivers a message to the
    # queues whose binding key equals the message's routing key.
    for severity in severities:
        channel.queue_bind(exchange="direct_logs", queue=queue_name, routing_key=severity)

    channel.basic_consume(queue=queue_name, on_message_callback=on_log, auto_ack=True)

    print(" [*] Waiting for logs. To exit press CTRL+C")
    channel.start_consuming()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("Interrupted")
        sys.exit(0)
