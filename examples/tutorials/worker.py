#!/usr/bin/env python
"""Tutorial 2, "Work queues" -- a worker.

Takes tasks from 'task_queue' one at a time, "works" one second per dot in the
task, then acknowledges it. Start several workers: the tasks are shared among them.
Run:  python worker.py   (stop it with CTRL+C)
"""
import os
import sys
import time

import pika

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@localhost:5672/%2F")


def on_task(channel, method, properties, body):
    print(" [x] Received %r" % body.decode())
    time.sleep(body.count(b"."))
    # Acknowledge only once the work is done: if this worker dies half way,
    # the broker hands the task to another worker. The ack goes out before "Done" is
    # printed, so a worker stopped right after saying Done has really finished.
    channel.basic_ack(delivery_tag=method.delivery_tag)
    print(" [x] Done")


def main():
    connection = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    channel = connection.channel()

    channel.queue_declare(queue="task_queue", durable=True)

    # Fair dispatch: never give this worker a new task while it is still busy.
    channel.basic_qos(prefetch_count=1)
    channel.basic_consume(queue="task_queue", on_message_callback=on_task)

    print(" [*] Waiting for messages. To exit press CTRL+C")
    channel.start_consuming()


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("Interrupted")
        sys.exit(0)
