#!/usr/bin/env python
"""Tutorial 3, "Publish/Subscribe" -- a subscriber.

Prints every message broadcast to the fanout exchange 'logs' from now on.
Run:  python receive_logs.py   (stop it with CTRL+C)
"""
import os
import sys

import pika

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")


def on_log(channel, method, properties, body):
    print(" [x] %r" % body)


def main():
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()

    channel.exchange_declare(exchange="logs", exchange_type="fanout")

    # A fresh queue with a server-chosen name, deleted when we disconnect: we
    # want only the logs flowing from now on, not old ones.
    result = channel.queue_declare(queue="", exclusive=True)
    queue_name = result.method.queue

    # The binding is what makes the exchange copy its messages into our queue.
    channel.queue_bind(exchange="logs", queue=queue_name)

    channel.basic_consume(queue=queue_name, on_message_callback=on_log, auto_ack=True)

    print(" [*] Waiting for logs. To exit press CTRL+C")
    channel.start_consuming()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("Interrupted")
        sys.exit(0)
