#!/usr/bin/env python
"""Tutorial 5, "Topics" -- a subscriber.

Prints the log messages whose routing key matches one of the binding keys given
on the command line. In a binding key, "*" stands for exactly one word and "#"
for zero or more words.
Run:  python receive_logs_topic.py "kern.*" "*.critical"   (stop it with CTRL+C)
"""
import os
import sys

import pika

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")


def on_log(channel, method, properties, body):
    print(" [x] %r:%r" % (method.routing_key, body))


def main():
    binding_keys = sys.argv[1:]
    if not binding_keys:
        sys.stderr.write("Usage: %s [binding_key]...\n" % sys.argv[0])
        sys.exit(1)

    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()

    channel.exchange_declare(exchange="topic_logs", exchange_type="topic")

    result = channel.queue_declare(queue="", exclusive=True)
    queue_name = result.method.queue

    for binding_key in binding_keys:
        channel.queue_bind(exchange="topic_logs", queue=queue_name, routing_key=binding_key)

    channel.basic_consume(queue=queue_name, on_message_callback=on_log, auto_ack=True)

    print(" [*] Waiting for logs. To exit press CTRL+C")
    channel.start_consuming()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("Interrupted")
        sys.exit(0)
