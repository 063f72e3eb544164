#!/usr/bin/env python
"""Tutorial 2, "Work queues" -- the producer.

Sends one task to the durable queue 'task_queue'. The task is the command-line
arguments joined by spaces; each dot in it stands for one second of work.
Run:  python new_task.py First message.
"""
import os
import sys

import pika

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")

connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
channel = connection.channel()

# durable=True: the queue itself survives a broker restart.
channel.queue_declare(queue="task_queue", durable=True)

message = " ".join(sys.argv[1:]) or "Hello World!"
channel.basic_publish(
    exchange="",
    routing_key="task_queue",
    body=message,
    # Persistent: the message is written to disk, so it survives a restart too.
    properties=pika.BasicProperties(delivery_mode=pika.DeliveryMode.Persistent),
)
print(" [x] Sent %r" % message)

connection.close()
