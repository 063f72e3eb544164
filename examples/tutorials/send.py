#!/usr/bin/env python
"""Tutorial 1, "Hello World!" -- the producer.

Puts a single message into the queue named 'hello' and exits.
Start receive.py first (in another terminal), then run:  python send.py
"""
import os

import pika

# Where the broker is: localhost:5672 as guest/guest unless AMQP_URL says otherwise.
AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")

connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
channel = connection.channel()

# Declaring is idempotent: whichever of send.py / receive.py runs first creates it.
channel.queue_declare(queue="hello")

# The default exchange ('') routes a message to the queue named by its routing key.
channel.basic_publish(exchange="", routing_key="hello", body="Hello World!")
print(" [x] Sent 'Hello World!'")

connection.close()
