#!/usr/bin/env python
"""Tutorial 1, "Hello World!" -- the consumer.

Waits for messages on the queue 'hello' and prints each one as it arrives.
Run:  python receive.py   (stop it with CTRL+C)
"""
import os
import sys

import pika

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")


def on_message(channel, method, properties, body):
    print(" [x] Received %r" % body)


def main():
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()

    # Declare the queue here too: we don't know whether send.py has run yet.
    channel.queue_declare(queue="hello")

    # auto_ack: the broker forgets a message as soon as it has delivered it.
    channel.basic_consume(queue="hello", on_message_callback=on_message, auto_ack=True)

    print(" [*] Waiting for messages. To exit press CTRL+C")
    channel.start_consuming()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("Interrupted")
        sys.exit(0)
